//! The write-ahead journal of settled events (SQLite serving process).
//!
//! Why: "a request answered is never lost" used to mean one database group commit on every
//! request's critical path (a hand-off to the writer thread, a SQLite transaction, a hand-off
//! back). The journal keeps the guarantee at the price of one `write(2)`: a settle appends its
//! event to an append-only file (which the kernel keeps across `kill -9` of the process) and
//! returns; the writer thread commits journaled events to SQLite in batches in the background,
//! and a start replays whatever the previous process journaled but had not committed.
//!
//! Format: one line per event, `<crc32 hex> <json>\n`, in numbered segment files
//! `<db>.pending.<n>` beside the database. A line whose checksum fails was never acknowledged
//! (its append failed) and is skipped at replay. After the writer commits a batch that covers a
//! whole segment, it deletes the segment, so the journal holds only recent events.
//!
//! Appends are written in groups: a settle buffers its line, and the first settle of a
//! scheduler tick that finds no write in flight on its thread steps aside once, then writes
//! every line buffered meanwhile in one `write(2)`. Every settle still returns only once its
//! own line is written, so the guarantee is unchanged; at 64 concurrent requests one write
//! carries several events instead of one.
//!
//! Replay is idempotent: events are inserted `ON CONFLICT (request_id) DO NOTHING` and spend
//! counters move only for newly inserted events, so a segment that was committed but not yet
//! deleted when the process died changes nothing.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::budget::engine::CellKey;
use crate::error::LedgerError;
use crate::events::WriteJob;
use crate::hold_slots::{self, HoldSlots};
use crate::model::{Usage, UsageEvent};

/// A segment is retired (and deleted once committed) past this size.
const SEGMENT_BYTES: u64 = 8 << 20;

/// Journaled events not yet committed above which settles wait for the database instead:
/// backpressure, so a writer that cannot keep up never grows memory without bound.
pub(crate) const HIGH_WATER: usize = 64 * 1024;

/// One journal line's payload. Own struct (not `UsageEvent`, which flattens `usage`) so the
/// format is explicit and stable.
#[derive(Serialize, Deserialize)]
struct Record<'a> {
    time: DateTime<Utc>,
    member: std::borrow::Cow<'a, str>,
    team: std::borrow::Cow<'a, str>,
    org: std::borrow::Cow<'a, str>,
    usage: std::borrow::Cow<'a, Usage>,
}

/// The marker lines of requests in flight: a hold recorded before the request is forwarded,
/// the generation id once upstream's headers reveal it, and a release when nothing was
/// generated. A hold with neither its settled event nor a release at the next start was in
/// flight when the process died (`crate::inflight`).
// Built for one line and dropped; boxing the hold would add an allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Marker<'a> {
    Hold(Record<'a>),
    Generation {
        request_id: std::borrow::Cow<'a, str>,
        generation_id: std::borrow::Cow<'a, str>,
    },
    Released(std::borrow::Cow<'a, str>),
}

/// One decoded journal line (events and holds are nearly all of them).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    /// A settled event.
    Event(UsageEvent),
    /// A request about to be forwarded: its provisional event (cost = the hold's worst case).
    Hold(UsageEvent),
    Generation {
        request_id: String,
        generation_id: String,
    },
    Released(String),
}

/// The open journal of a serving SQLite ledger.
pub(crate) struct Journal {
    prefix: PathBuf,
    state: Mutex<State>,
    /// Events appended / committed by the writer: equal when the database has everything.
    appended: AtomicU64,
    committed: AtomicU64,
    /// Sequence number of the last line written (lines are numbered from 1 by `append`).
    written: AtomicU64,
    /// A write failed: lines buffered then are lost (their events are still committed to the
    /// database by the writer thread).
    failed: AtomicBool,
    /// `write(2)` calls made (one per group).
    writes: AtomicU64,
    /// Test-only switch: the next writes fail as a full disk's would.
    fail_writes: AtomicBool,
    /// Where holds go (a line only when no slot is free, or the file could not be made).
    slots: Option<HoldSlots>,
}

/// A hold as [`Journal::append_hold`] records it: the provisional event, borrowed.
pub(crate) struct HoldParts<'a> {
    pub time: DateTime<Utc>,
    pub member: &'a str,
    pub team: &'a str,
    pub org: &'a str,
    /// Its cost is the hold's worst case, its outcome provisional.
    pub usage: &'a Usage,
}

thread_local! {
    static HOLD_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(1024));
}

/// Where [`Journal::append_hold`] put a hold.
pub(crate) enum HoldWrite {
    /// In a slot of the in-flight slot file: durable already.
    Slot(u32),
    /// As a journal line: durable once [`Journal::written`] returns for this sequence number.
    Line(u64),
}

/// One thread's group write: whether one of its tasks is about to write, and how its other
/// tasks learn that it has.
#[derive(Default)]
struct LocalFlush {
    flushing: AtomicBool,
    done: tokio::sync::Notify,
}

thread_local! {
    static LOCAL_FLUSH: Arc<LocalFlush> = Arc::new(LocalFlush::default());
}

/// Writes the buffered lines when dropped (also when its task is cancelled mid-wait).
struct Flusher<'a> {
    journal: &'a Journal,
    local: &'a LocalFlush,
}

impl Drop for Flusher<'_> {
    fn drop(&mut self) {
        {
            let mut st = self.journal.state.lock();
            self.journal.write_buffered(&mut st);
        }
        self.local.flushing.store(false, Ordering::Release);
        self.local.done.notify_waiters();
    }
}

/// What `append` did.
pub(crate) struct Appended {
    /// The journal had nothing pending before: the writer thread needs a wake-up.
    pub wake: bool,
    /// The line's sequence number, for [`Journal::written`].
    pub seq: u64,
}

struct State {
    file: File,
    segment: u64,
    bytes: u64,
    /// Journaled, not yet taken by the writer.
    pending: Vec<WriteJob>,
    /// A failed append may have left a torn line: journaling stops (settles wait for the
    /// database instead) rather than risk gluing the next record to it.
    broken: bool,
    /// Lines appended, not yet written, and the sequence number of the last of them.
    buffered: Vec<u8>,
    buffered_through: u64,
    last_seq: u64,
    /// Holds of requests in flight (their provisional events), by request id: rewritten into
    /// each new segment, so deleting a committed segment never drops an open hold.
    open: std::collections::HashMap<String, UsageEvent>,
}

/// What the writer takes from the journal for one batch.
pub(crate) struct Taken {
    pub jobs: Vec<WriteJob>,
    /// Segments every event of which is in `jobs` or committed before: delete after the commit.
    pub retired: Vec<PathBuf>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn io_err(op: &'static str) -> impl Fn(std::io::Error) -> LedgerError {
    move |e| LedgerError::storage(op, e)
}

/// `<db>.pending.` — segment `n` is `<db>.pending.<n, 10 digits>`.
fn prefix_for(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".pending.");
    PathBuf::from(p)
}

fn segment_path(prefix: &Path, n: u64) -> PathBuf {
    let mut p = prefix.as_os_str().to_owned();
    p.push(format!("{n:010}"));
    PathBuf::from(p)
}

/// Existing segments of the database at `db`, oldest first.
fn segments(db: &Path) -> Result<Vec<(u64, PathBuf)>, LedgerError> {
    let prefix = prefix_for(db);
    let dir = match prefix.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name_prefix = prefix
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(io_err("listing the event journal"))? {
        let entry = entry.map_err(io_err("listing the event journal"))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_prefix(&name_prefix)
            .and_then(|rest| rest.parse::<u64>().ok())
        {
            out.push((n, entry.path()));
        }
    }
    out.sort_by_key(|(n, _)| *n);
    Ok(out)
}

/// Whether a previous serving process left journal segments for the database at `db`.
pub(crate) fn has_leftovers(db: &Path) -> bool {
    segments(db).is_ok_and(|s| !s.is_empty()) || hold_slots::path_for(db).exists()
}

/// Copies the journal segments of the database at `db` as the journal of the database at `to`
/// (a backup replays them into its copy). A segment deleted meanwhile had all its events
/// committed first, so skipping it loses nothing.
pub(crate) fn copy_segments(db: &Path, to: &Path) -> Result<usize, LedgerError> {
    let prefix = prefix_for(to);
    let mut copied = 0;
    let mut files: Vec<(PathBuf, PathBuf)> = segments(db)?
        .into_iter()
        .map(|(n, path)| (path, segment_path(&prefix, n)))
        .collect();
    files.push((hold_slots::path_for(db), hold_slots::path_for(to)));
    for (from, to) in files {
        match std::fs::copy(&from, to) {
            Ok(_) => copied += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("copying the event journal")(e)),
        }
    }
    Ok(copied)
}

/// Removes every journal segment of the database at `db` (a restore replaces that ledger).
pub(crate) fn remove_all_segments(db: &Path) -> Result<usize, LedgerError> {
    let found = segments(db)?;
    let mut paths: Vec<PathBuf> = found.into_iter().map(|(_, p)| p).collect();
    let slots = hold_slots::path_for(db);
    if slots.exists() {
        paths.push(slots);
    }
    remove_segments(&paths);
    Ok(paths.len())
}

fn record(event: &UsageEvent) -> Record<'_> {
    Record {
        time: event.time,
        member: event.member_id.as_str().into(),
        team: event.team_id.as_str().into(),
        org: event.org_id.as_str().into(),
        usage: std::borrow::Cow::Borrowed(&event.usage),
    }
}

fn owned(r: Record<'_>) -> UsageEvent {
    UsageEvent {
        time: r.time,
        member_id: r.member.into_owned(),
        team_id: r.team.into_owned(),
        org_id: r.org.into_owned(),
        usage: r.usage.into_owned(),
        reconciled: None,
    }
}

/// Encodes one event as a journal line.
fn encode(event: &UsageEvent) -> Result<Vec<u8>, LedgerError> {
    encode_json(&record(event))
}

fn encode_marker(marker: &Marker<'_>) -> Result<Vec<u8>, LedgerError> {
    encode_json(marker)
}

fn encode_json(value: &impl Serialize) -> Result<Vec<u8>, LedgerError> {
    let json = serde_json::to_vec(value)
        .map_err(|e| LedgerError::storage("encoding a journal record", e))?;
    line_of(&json)
}

/// `<crc32 hex> <json>\n`.
fn line_of(json: &[u8]) -> Result<Vec<u8>, LedgerError> {
    let mut line = Vec::with_capacity(json.len() + 10);
    write!(line, "{:08x} ", crc32fast::hash(json)).map_err(io_err("encoding a journal record"))?;
    line.extend_from_slice(json);
    line.push(b'\n');
    Ok(line)
}

/// Decodes one event line (without its newline); `None` for a torn or corrupt line or a marker.
#[cfg(test)]
fn decode(line: &[u8]) -> Option<UsageEvent> {
    match decode_line(line)? {
        Line::Event(e) => Some(e),
        _ => None,
    }
}

/// Decodes one journal line (without its newline); `None` for a torn or corrupt line.
fn decode_line(line: &[u8]) -> Option<Line> {
    let (crc, json) = (line.get(..8)?, line.get(9..)?);
    let crc = u32::from_str_radix(std::str::from_utf8(crc).ok()?, 16).ok()?;
    if line.get(8) != Some(&b' ') || crc32fast::hash(json) != crc {
        return None;
    }
    if let Ok(r) = serde_json::from_slice::<Record<'_>>(json) {
        return Some(Line::Event(owned(r)));
    }
    Some(match serde_json::from_slice::<Marker<'_>>(json).ok()? {
        Marker::Hold(r) => Line::Hold(owned(r)),
        Marker::Generation {
            request_id,
            generation_id,
        } => Line::Generation {
            request_id: request_id.into_owned(),
            generation_id: generation_id.into_owned(),
        },
        Marker::Released(id) => Line::Released(id.into_owned()),
    })
}

/// Reads every event a previous process journaled for the database at `db`, oldest first, and
/// the segment files they came from. Corrupt lines (a torn append) are skipped and counted.
#[cfg(test)]
pub(crate) fn read_leftovers(db: &Path) -> Result<(Vec<UsageEvent>, Vec<PathBuf>), LedgerError> {
    let (lines, files) = read_leftover_lines(db)?;
    let events = lines
        .into_iter()
        .filter_map(|l| match l {
            Line::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    Ok((events, files))
}

/// What a previous process left in the journal: the settled events to commit, and the
/// provisional events of the requests that were in flight (a hold without its event or
/// release), with the generation id when upstream's headers had revealed it.
pub(crate) struct Leftovers {
    pub events: Vec<UsageEvent>,
    pub in_flight: Vec<UsageEvent>,
    pub files: Vec<PathBuf>,
}

pub(crate) fn leftovers(db: &Path) -> Result<Leftovers, LedgerError> {
    let (lines, mut files) = read_leftover_lines(db)?;
    let mut events = Vec::new();
    let mut holds: indexmap_lite::Ordered = Default::default();
    for line in lines {
        match line {
            Line::Event(e) => {
                holds.remove(&e.usage.request_id);
                events.push(e);
            }
            Line::Hold(h) => holds.insert(h),
            Line::Generation {
                request_id,
                generation_id,
            } => holds.set_generation(&request_id, generation_id),
            Line::Released(id) => holds.remove(&id),
        }
    }
    let mut in_flight = holds.into_vec();
    // Holds in the slot file: those whose event the journal has ended when it was written.
    let slot_path = hold_slots::path_for(db);
    if slot_path.exists() {
        let settled: std::collections::HashSet<&str> =
            events.iter().map(|e| e.usage.request_id.as_str()).collect();
        let mut corrupt = 0usize;
        for h in hold_slots::read(db)? {
            match serde_json::from_slice::<Marker<'_>>(&h.payload) {
                Ok(Marker::Hold(r)) => {
                    let mut e = owned(r);
                    if settled.contains(e.usage.request_id.as_str()) {
                        continue;
                    }
                    if h.generation_id.is_some() {
                        e.usage.generation_id = h.generation_id;
                    }
                    in_flight.push(e);
                }
                _ => corrupt += 1,
            }
        }
        if corrupt > 0 {
            tracing::warn!(
                corrupt,
                "skipped unreadable holds in the in-flight slot file"
            );
        }
        files.push(slot_path);
    }
    Ok(Leftovers {
        events,
        in_flight,
        files,
    })
}

/// Open holds by request id, in the order they were recorded.
mod indexmap_lite {
    use std::collections::HashMap;

    use crate::model::UsageEvent;

    #[derive(Default)]
    pub(crate) struct Ordered {
        order: Vec<String>,
        by_id: HashMap<String, UsageEvent>,
    }

    impl Ordered {
        pub fn insert(&mut self, e: UsageEvent) {
            let id = e.usage.request_id.clone();
            if self.by_id.insert(id.clone(), e).is_none() {
                self.order.push(id);
            }
        }
        pub fn remove(&mut self, id: &str) {
            self.by_id.remove(id);
        }
        pub fn set_generation(&mut self, id: &str, generation_id: String) {
            if let Some(e) = self.by_id.get_mut(id) {
                e.usage.generation_id = Some(generation_id);
            }
        }
        pub fn into_vec(mut self) -> Vec<UsageEvent> {
            self.order
                .iter()
                .filter_map(|id| self.by_id.remove(id))
                .collect()
        }
    }
}

fn read_leftover_lines(db: &Path) -> Result<(Vec<Line>, Vec<PathBuf>), LedgerError> {
    let mut events = Vec::new();
    let mut files = Vec::new();
    let mut corrupt = 0usize;
    for (_, path) in segments(db)? {
        let f = File::open(&path).map_err(io_err("reading the event journal"))?;
        for line in BufReader::new(f).split(b'\n') {
            let line = line.map_err(io_err("reading the event journal"))?;
            if line.is_empty() {
                continue;
            }
            match decode_line(&line) {
                Some(l) => events.push(l),
                None => corrupt += 1,
            }
        }
        files.push(path);
    }
    if corrupt > 0 {
        tracing::warn!(
            corrupt,
            "skipped torn journal lines (appends that were never acknowledged)"
        );
    }
    Ok((events, files))
}

/// The write job of a replayed event (no hold, no waiter).
pub(crate) fn replay_job(event: UsageEvent) -> WriteJob {
    let keys = CellKey::all_for(
        &Arc::from(event.member_id.as_str()),
        &Arc::from(event.team_id.as_str()),
        &Arc::from(event.org_id.as_str()),
        event.time,
    );
    WriteJob {
        event,
        keys,
        takes: Vec::new(),
        ack: None,
    }
}

/// Removes committed segment files; a failure only leaves work for the next replay.
pub(crate) fn remove_segments(paths: &[PathBuf]) {
    for p in paths {
        if let Err(err) = std::fs::remove_file(p)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%err, path = %p.display(), "could not remove a committed journal segment");
        }
    }
}

impl Journal {
    /// Opens a fresh segment after the newest existing one. Call after replaying leftovers.
    pub(crate) fn create(db: &Path) -> Result<Journal, LedgerError> {
        let next = segments(db)?.last().map(|(n, _)| n + 1).unwrap_or(1);
        let prefix = prefix_for(db);
        let file = open_segment(&prefix, next)?;
        Ok(Journal {
            prefix,
            state: Mutex::new(State {
                file,
                segment: next,
                bytes: 0,
                pending: Vec::new(),
                broken: false,
                buffered: Vec::new(),
                buffered_through: 0,
                last_seq: 0,
                open: std::collections::HashMap::new(),
            }),
            appended: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            written: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            writes: AtomicU64::new(0),
            fail_writes: AtomicBool::new(false),
            slots: match HoldSlots::create(db) {
                Ok(s) => Some(s),
                Err(err) => {
                    tracing::warn!(%err, "holds of requests in flight go to the journal as lines instead");
                    None
                }
            },
        })
    }

    /// Buffers the event of `job` for the journal and queues the job for the writer; await
    /// [`Journal::written`] with the returned sequence number before acknowledging it. When the
    /// journal cannot take it (encoding failed, the journal is broken, or the writer is at the
    /// high-water mark) the job comes back so the caller can commit it the slow way.
    pub(crate) fn append(&self, job: WriteJob) -> Result<Appended, Box<WriteJob>> {
        let line = match encode(&job.event) {
            Ok(line) => line,
            Err(err) => {
                tracing::warn!(%err, "journal encoding failed; committing directly");
                return Err(Box::new(job));
            }
        };
        let mut st = self.state.lock();
        if st.broken || st.pending.len() >= HIGH_WATER {
            return Err(Box::new(job));
        }
        st.buffered.extend_from_slice(&line);
        st.last_seq += 1;
        let seq = st.last_seq;
        st.buffered_through = seq;
        st.open.remove(&job.event.usage.request_id);
        let wake = st.pending.is_empty();
        st.pending.push(job);
        self.appended.fetch_add(1, Ordering::Release);
        Ok(Appended { wake, seq })
    }

    /// Records the hold of a request about to be forwarded (its provisional event at the
    /// worst case, `hold`): in a free slot of the in-flight slot file, durable on return, else
    /// as a buffered line (await [`Journal::written`] with its sequence number before
    /// forwarding). `Err` when the journal is broken: the request must not be forwarded.
    pub(crate) fn append_hold(&self, hold: &HoldParts<'_>) -> Result<HoldWrite, LedgerError> {
        let broken = || LedgerError::Storage {
            op: "recording a request in flight",
            source: "the event journal could not be written".into(),
        };
        if self.failed.load(Ordering::Acquire) || self.fail_writes.load(Ordering::Acquire) {
            return Err(broken());
        }
        let marker = Marker::Hold(Record {
            time: hold.time,
            member: hold.member.into(),
            team: hold.team.into(),
            org: hold.org.into(),
            usage: std::borrow::Cow::Borrowed(hold.usage),
        });
        // Encoded into this thread's buffer: the hot path allocates nothing for it.
        let (slot, json) = HOLD_BUF.with_borrow_mut(|buf| {
            buf.clear();
            serde_json::to_writer(&mut *buf, &marker)
                .map_err(|e| LedgerError::storage("encoding a journal record", e))?;
            let slot = self.slots.as_ref().and_then(|s| s.put(buf));
            Ok::<_, LedgerError>((
                slot,
                if slot.is_none() {
                    buf.clone()
                } else {
                    Vec::new()
                },
            ))
        })?;
        if let Some(slot) = slot {
            return Ok(HoldWrite::Slot(slot));
        }
        let line = line_of(&json)?;
        let mut st = self.state.lock();
        if st.broken {
            return Err(broken());
        }
        st.buffered.extend_from_slice(&line);
        st.last_seq += 1;
        st.buffered_through = st.last_seq;
        st.open.insert(
            hold.usage.request_id.clone(),
            UsageEvent {
                time: hold.time,
                member_id: hold.member.to_owned(),
                team_id: hold.team.to_owned(),
                org_id: hold.org.to_owned(),
                usage: hold.usage.clone(),
                reconciled: None,
            },
        );
        Ok(HoldWrite::Line(st.last_seq))
    }

    /// Buffers the generation id of a request in flight; await [`Journal::written`] with the
    /// returned sequence number for it to be durable (`None`: no open hold, or broken).
    pub(crate) fn append_generation(
        &self,
        request_id: &str,
        slot: Option<u32>,
        generation_id: &str,
    ) -> Option<u64> {
        if let (Some(slot), Some(slots)) = (slot, &self.slots) {
            slots.set_generation(slot, generation_id);
            return None;
        }
        let marker = Marker::Generation {
            request_id: request_id.into(),
            generation_id: generation_id.into(),
        };
        let line = encode_marker(&marker).ok()?;
        let mut st = self.state.lock();
        let hold = st.open.get_mut(request_id)?;
        hold.usage.generation_id = Some(generation_id.to_owned());
        if st.broken {
            return None;
        }
        st.buffered.extend_from_slice(&line);
        st.last_seq += 1;
        st.buffered_through = st.last_seq;
        Some(st.last_seq)
    }

    /// A request in flight ended without an event (nothing was generated), or its event went
    /// to the database directly: its hold is closed.
    pub(crate) fn close_hold(&self, request_id: &str, slot: Option<u32>, write_release: bool) {
        if slot.is_some() {
            self.free_slot(slot);
            return;
        }
        let mut st = self.state.lock();
        if st.open.remove(request_id).is_none() || !write_release || st.broken {
            return;
        }
        if let Ok(line) = encode_marker(&Marker::Released(request_id.into())) {
            st.buffered.extend_from_slice(&line);
            st.last_seq += 1;
            st.buffered_through = st.last_seq;
        }
    }

    /// The hold in `slot` ended: its request's event is durable, or it was released.
    pub(crate) fn free_slot(&self, slot: Option<u32>) {
        if let (Some(slot), Some(slots)) = (slot, &self.slots) {
            slots.free(slot);
        }
    }

    /// Returns once line `seq` is written — then its bytes are the kernel's and survive
    /// `kill -9`. `Err` when the write failed: the event is still committed to the database by
    /// the writer thread, which the caller must wait for instead.
    pub(crate) async fn written(&self, seq: u64) -> Result<(), ()> {
        let local = LOCAL_FLUSH.with(Arc::clone);
        loop {
            if self.written.load(Ordering::Acquire) >= seq {
                return Ok(());
            }
            if self.failed.load(Ordering::Acquire) {
                return Err(());
            }
            let mut done = std::pin::pin!(local.done.notified());
            done.as_mut().enable();
            if !local.flushing.swap(true, Ordering::AcqRel) {
                let _flusher = Flusher {
                    journal: self,
                    local: &local,
                };
                // Step aside once, so that the other requests finishing in this scheduler
                // tick buffer their lines too; the flusher's drop writes them all at once.
                tokio::task::yield_now().await;
                continue;
            }
            if self.written.load(Ordering::Acquire) >= seq || self.failed.load(Ordering::Acquire) {
                continue;
            }
            done.await;
        }
    }

    /// One `write(2)` of every buffered line.
    fn write_buffered(&self, st: &mut State) {
        if st.buffered.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut st.buffered);
        self.writes.fetch_add(1, Ordering::Relaxed);
        let result = if self.fail_writes.load(Ordering::Acquire) {
            Err(std::io::Error::from_raw_os_error(28)) // ENOSPC
        } else {
            st.file.write_all(&lines)
        };
        match result {
            Ok(()) => {
                st.bytes += lines.len() as u64;
                self.written.store(st.buffered_through, Ordering::Release);
            }
            Err(err) => {
                st.broken = true;
                self.failed.store(true, Ordering::Release);
                tracing::error!(%err, "event journal append failed; settles now wait for the database");
            }
        }
        // Keep the buffer's allocation for the next group, unless a burst made it large.
        if lines.capacity() <= 64 * 1024 {
            let mut lines = lines;
            lines.clear();
            st.buffered = lines;
        }
    }

    /// Test-only: make every following write fail with ENOSPC, as on a full filesystem.
    pub(crate) fn fail_writes_for_tests(&self) {
        self.fail_writes.store(true, Ordering::Release);
    }

    /// The writer committed `n` journaled events.
    pub(crate) fn committed(&self, n: usize) {
        self.committed.fetch_add(n as u64, Ordering::Release);
    }

    /// Whether some journaled event is not committed to the database yet.
    pub(crate) fn behind(&self) -> bool {
        self.appended.load(Ordering::Acquire) != self.committed.load(Ordering::Acquire)
    }

    /// Takes every pending job; retires the current segment (starting a new one) when it is
    /// large, or always with `force` (a flush, so a clean stop leaves no committed segment).
    pub(crate) fn take(&self, force_rotate: bool) -> Taken {
        let mut st = self.state.lock();
        // Every job taken has its line in the segment it may retire.
        self.write_buffered(&mut st);
        let jobs = std::mem::take(&mut st.pending);
        let mut retired = Vec::new();
        if (force_rotate && st.bytes > 0) || st.bytes >= SEGMENT_BYTES {
            match open_segment(&self.prefix, st.segment + 1)
                .and_then(|f| carry_holds(f, st.open.values()))
            {
                Ok((f, bytes)) => {
                    retired.push(segment_path(&self.prefix, st.segment));
                    st.file = f;
                    st.segment += 1;
                    st.bytes = bytes;
                }
                Err(err) => {
                    tracing::warn!(%err, "could not start a new journal segment; keeping the current one");
                }
            }
        }
        Taken { jobs, retired }
    }

    /// Removes the current (empty or fully committed) segment at a clean stop.
    pub(crate) fn close(&self) {
        let mut st = self.state.lock();
        self.write_buffered(&mut st);
        if st.pending.is_empty() && st.open.is_empty() && !self.behind() {
            remove_segments(&[segment_path(&self.prefix, st.segment)]);
        }
        if let Some(slots) = &self.slots {
            slots.close();
        }
    }
}

/// Writes the open holds at the start of a new segment, before the old one may be deleted.
fn carry_holds<'a>(
    mut file: File,
    holds: impl Iterator<Item = &'a UsageEvent>,
) -> Result<(File, u64), LedgerError> {
    let mut lines = Vec::new();
    for h in holds {
        lines.extend(encode_marker(&Marker::Hold(record(h)))?);
    }
    if !lines.is_empty() {
        file.write_all(&lines)
            .map_err(io_err("carrying holds into a new journal segment"))?;
    }
    Ok((file, lines.len() as u64))
}

fn open_segment(prefix: &Path, n: u64) -> Result<File, LedgerError> {
    File::options()
        .create(true)
        .append(true)
        .open(segment_path(prefix, n))
        .map_err(io_err("opening an event journal segment"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orteam_core::Money;

    fn event(id: &str) -> UsageEvent {
        UsageEvent {
            time: DateTime::from_timestamp(1_700_000_000, 123_000).unwrap_or_default(),
            member_id: "alice".into(),
            team_id: "core".into(),
            org_id: "acme".into(),
            usage: Usage::new(
                id,
                "openai/gpt-4o-mini",
                Money::parse("0.0000123").unwrap_or_default(),
            ),
            reconciled: None,
        }
    }

    #[test]
    fn a_line_round_trips_exactly() {
        let e = event("r1");
        let line = encode(&e).unwrap_or_default();
        assert_eq!(line.last(), Some(&b'\n'));
        let back = decode(&line[..line.len() - 1]);
        assert_eq!(back, Some(e));
    }

    #[test]
    fn every_route_round_trips() {
        for route in orteam_core::ApiRoute::ALL {
            let mut e = event("r1");
            e.usage.route = route;
            let line = encode(&e).unwrap_or_default();
            assert_eq!(decode(&line[..line.len() - 1]), Some(e));
        }
    }

    /// A line written before routes were recorded (no `route` member) replays as chat.
    #[test]
    fn a_line_from_before_routes_replays_as_chat() {
        let json = br#"{"time":"2023-11-14T22:13:20.000123Z","member":"alice","team":"core","org":"acme","usage":{"request_id":"old-1","virtual_key_id":null,"upstream_key_hash":null,"requested_model":"openai/gpt-4o-mini","served_model":null,"provider":null,"prompt_tokens":3,"completion_tokens":4,"reasoning_tokens":0,"cached_tokens":0,"cost":"0.0000123","generation_id":null,"streamed":false,"outcome":"ok","latency_ms":7,"title":null}}"#;
        let mut line = format!("{:08x} ", crc32fast::hash(json)).into_bytes();
        line.extend_from_slice(json);
        let e = decode(&line).unwrap_or_else(|| panic!("an old line must decode"));
        assert_eq!(e.usage.route, orteam_core::ApiRoute::Chat);
        assert_eq!(e.usage.request_id, "old-1");
        assert_eq!(e.usage.prompt_tokens, 3);
        assert_eq!(e.usage.cost, Money::parse("0.0000123").unwrap_or_default());
    }

    #[test]
    fn a_torn_or_altered_line_is_rejected() {
        let line = encode(&event("r1")).unwrap_or_default();
        let body = &line[..line.len() - 1];
        assert!(decode(&body[..body.len() - 3]).is_none(), "torn tail");
        let mut altered = body.to_vec();
        if let Some(b) = altered.iter_mut().rev().find(|b| b.is_ascii_digit()) {
            *b = if *b == b'9' { b'8' } else { b'9' };
        }
        assert!(decode(&altered).is_none(), "altered digit");
        assert!(decode(b"").is_none());
        assert!(decode(b"zzzzzzzz {}").is_none());
    }

    #[test]
    fn leftovers_are_read_oldest_first_skipping_torn_lines() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = dir.path().join("x.db");
        let j = Journal::create(&db).unwrap_or_else(|e| panic!("{e}"));
        let job = |id: &str| replay_job(event(id));
        for id in ["a", "b"] {
            assert!(j.append(job(id)).is_ok());
        }
        let taken = j.take(true);
        assert_eq!(taken.jobs.len(), 2);
        assert_eq!(taken.retired.len(), 1);
        let c = j.append(job("c")).unwrap_or_else(|_| panic!("append"));
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
            .block_on(j.written(c.seq))
            .unwrap_or_else(|()| panic!("written"));
        let line = encode(&event("c")).unwrap_or_default();
        // A torn append at the end of the newest segment.
        {
            let mut st = j.state.lock();
            let _ = st.file.write_all(&line[..line.len() / 2]);
        }
        drop(j);
        let (events, files) = read_leftovers(&db).unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<_> = events.iter().map(|e| e.usage.request_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(files.len(), 2);
        remove_segments(&files);
        assert!(
            read_leftovers(&db)
                .map(|(e, _)| e.is_empty())
                .unwrap_or(false)
        );
        // The next journal starts after the newest segment number seen.
        assert!(Journal::create(&db).is_ok());
    }

    fn parts(e: &UsageEvent) -> HoldParts<'_> {
        HoldParts {
            time: e.time,
            member: &e.member_id,
            team: &e.team_id,
            org: &e.org_id,
            usage: &e.usage,
        }
    }

    /// A process killed with two holds in slots, one of whose events it had journaled but not
    /// yet freed the slot of: the next start finds that one settled and the other in flight,
    /// with its generation id.
    #[test]
    fn slot_holds_are_in_flight_unless_their_event_was_journaled() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = dir.path().join("x.db");
        let j = Journal::create(&db).unwrap_or_else(|e| panic!("{e}"));
        let slot = |id: &str| match j.append_hold(&parts(&event(id))) {
            Ok(HoldWrite::Slot(s)) => s,
            _ => panic!("a free slot"),
        };
        let _a = slot("a");
        let b = slot("b");
        assert_eq!(j.append_generation("b", Some(b), "gen-b"), None, "no line");
        let settled = j
            .append(replay_job(event("a")))
            .unwrap_or_else(|_| panic!("append"));
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
            .block_on(j.written(settled.seq))
            .unwrap_or_else(|()| panic!("written"));
        drop(j); // killed before freeing a's slot
        let left = leftovers(&db).unwrap_or_else(|e| panic!("{e}"));
        let ids = |v: &[UsageEvent]| -> Vec<String> {
            v.iter().map(|e| e.usage.request_id.clone()).collect()
        };
        assert_eq!(ids(&left.events), ["a"]);
        assert_eq!(ids(&left.in_flight), ["b"]);
        assert_eq!(
            left.in_flight[0].usage.generation_id.as_deref(),
            Some("gen-b")
        );
        assert!(left.files.contains(&hold_slots::path_for(&db)));
        assert!(has_leftovers(&db));
    }

    #[test]
    fn concurrent_settles_share_writes_and_each_waits_for_its_own_line() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = dir.path().join("x.db");
        let j = Arc::new(Journal::create(&db).unwrap_or_else(|e| panic!("{e}")));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<String> = (0..64).map(|i| format!("r{i}")).collect();
        rt.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for id in ids.clone() {
                let j = j.clone();
                let db = db.clone();
                tasks.spawn(async move {
                    let a = j
                        .append(replay_job(event(&id)))
                        .unwrap_or_else(|_| panic!("append"));
                    j.written(a.seq)
                        .await
                        .unwrap_or_else(|()| panic!("written"));
                    // Acknowledged: the line must be in the file now.
                    let (events, _) = read_leftovers(&db).unwrap_or_else(|e| panic!("{e}"));
                    assert!(events.iter().any(|e| e.usage.request_id == id), "{id}");
                });
            }
            while let Some(r) = tasks.join_next().await {
                r.unwrap_or_else(|e| panic!("{e}"));
            }
        });
        let (events, _) = read_leftovers(&db).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(events.len(), 64);
        let writes = j.writes.load(Ordering::Relaxed);
        assert!(
            writes < 64 / 4,
            "{writes} writes for 64 settles in one tick"
        );
    }
}

//! The holds of requests in flight of a serving SQLite ledger, in a memory-mapped file of
//! fixed-size slots beside the database (`<db>.inflight`).
//!
//! Why: a hold must survive `kill -9` before its request is forwarded. As a journal line that
//! cost every request a `write(2)` and a scheduler round on its critical path (measured in
//! docs/BENCHMARKS.md, "Durable in-flight holds"). A store into a shared file mapping is the
//! kernel's page cache itself, so once the copy is done the hold outlives the process, at the
//! price of a `memcpy`: no system call. The file is written with zeros at creation, so no store
//! into it ever needs a new disk block (a full disk cannot fault a hold). Like the journal,
//! this survives a crash of the process, not of the machine.
//!
//! Slot layout (`SLOT` bytes): `[0..4)` payload length, little endian (0: free); `[4..8)` CRC-32
//! of the payload; `[8..)` the payload (the journal's JSON hold marker); at `GEN_AT`: the
//! generation id's length (`u16`), its CRC-32, its bytes. A slot is written payload first and
//! length last, and freed by zeroing the length, so a process killed at any point leaves each
//! slot either free or whole; a generation id is likewise whole or absent.
//!
//! One process writes the file (the serving process holds the serve lock); it is read only at
//! the next start, after that process is gone.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;
use parking_lot::Mutex;

use crate::error::LedgerError;

/// Bytes per slot.
const SLOT: usize = 1024;
/// Slots in the file: requests in flight beyond this many are journaled as lines instead.
const SLOTS: usize = 4096;
/// Where a slot's generation id starts.
const GEN_AT: usize = SLOT - 128;
/// Longest generation id kept (OpenRouter's are about 40 bytes); a longer one is not kept, and
/// its request is then resolved like one whose id was never seen.
const GEN_MAX: usize = SLOT - GEN_AT - 6;
/// Longest payload a slot takes.
const PAYLOAD_MAX: usize = GEN_AT - 8;

/// `<db>.inflight`.
pub(crate) fn path_for(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".inflight");
    PathBuf::from(p)
}

/// The open slot file of a serving process.
pub(crate) struct HoldSlots {
    path: PathBuf,
    map: Mutex<MmapMut>,
    free: Mutex<Vec<u32>>,
}

impl std::fmt::Debug for HoldSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HoldSlots")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl HoldSlots {
    /// Creates (or recreates, empty) the slot file of the database at `db`. Call after the
    /// previous process's holds were read and resolved.
    pub(crate) fn create(db: &Path) -> Result<HoldSlots, LedgerError> {
        let path = path_for(db);
        let err = |e| LedgerError::storage("creating the in-flight slot file", e);
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(err)?;
        // Real zeros, not a sparse file: every block is allocated now.
        let zeros = vec![0u8; SLOT * 64];
        for _ in 0..SLOTS / 64 {
            file.write_all(&zeros).map_err(err)?;
        }
        file.sync_all().map_err(err)?;
        let map = map_file(&file).map_err(err)?;
        Ok(HoldSlots {
            path,
            map: Mutex::new(map),
            free: Mutex::new((0..SLOTS as u32).rev().collect()),
        })
    }

    /// Writes a hold; `None` when no slot is free or the payload does not fit (the caller
    /// journals it as a line instead). The hold is durable against `kill -9` on return.
    pub(crate) fn put(&self, payload: &[u8]) -> Option<u32> {
        if payload.is_empty() || payload.len() > PAYLOAD_MAX {
            return None;
        }
        let slot = self.free.lock().pop()?;
        let at = slot as usize * SLOT;
        let mut map = self.map.lock();
        let s = &mut map[at..at + SLOT];
        // The length is 0 (free): clear a previous occupant's generation id, then the payload,
        // its checksum, and its length last.
        s[GEN_AT..GEN_AT + 2].copy_from_slice(&0u16.to_le_bytes());
        s[8..8 + payload.len()].copy_from_slice(payload);
        s[4..8].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
        s[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        Some(slot)
    }

    /// Adds the generation id to the hold in `slot` (durable on return); `false` when it is too
    /// long to keep.
    pub(crate) fn set_generation(&self, slot: u32, generation_id: &str) -> bool {
        let id = generation_id.as_bytes();
        if id.is_empty() || id.len() > GEN_MAX {
            return false;
        }
        let at = slot as usize * SLOT + GEN_AT;
        let mut map = self.map.lock();
        let g = &mut map[at..at + 6 + id.len()];
        g[0..2].copy_from_slice(&0u16.to_le_bytes());
        g[6..].copy_from_slice(id);
        g[2..6].copy_from_slice(&crc32fast::hash(id).to_le_bytes());
        g[0..2].copy_from_slice(&(id.len() as u16).to_le_bytes());
        true
    }

    /// The hold in `slot` ended (settled durably elsewhere, or released): the slot is free.
    pub(crate) fn free(&self, slot: u32) {
        let at = slot as usize * SLOT;
        self.map.lock()[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
        self.free.lock().push(slot);
    }

    /// Slots in use.
    pub(crate) fn in_use(&self) -> usize {
        SLOTS - self.free.lock().len()
    }

    /// Removes the file at a clean stop when no hold is open.
    pub(crate) fn close(&self) {
        if self.in_use() == 0
            && let Err(err) = std::fs::remove_file(&self.path)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%err, "could not remove the in-flight slot file");
        }
    }
}

#[allow(unsafe_code)]
fn map_file(file: &File) -> std::io::Result<MmapMut> {
    // SAFETY: the mapping is of a file only this process writes (the serving process holds
    // the ledger's serve lock, and readers open the file only when no server holds it) and
    // nobody truncates while it is mapped, so the memory behind the slice stays valid and is
    // not changed behind Rust's back.
    unsafe { MmapMut::map_mut(file) }
}

/// One hold read back from a slot file: its payload and, when it was recorded, its
/// generation id.
pub(crate) struct SlotHold {
    pub payload: Vec<u8>,
    pub generation_id: Option<String>,
}

/// Reads the holds a previous process left in the slot file of the database at `db` (none when
/// there is no file). A slot whose checksum fails is free (its write never finished, so its
/// request was never forwarded).
pub(crate) fn read(db: &Path) -> Result<Vec<SlotHold>, LedgerError> {
    let bytes = match std::fs::read(path_for(db)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LedgerError::storage("reading the in-flight slot file", e)),
    };
    let u32_at = |s: &[u8], i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    let mut holds = Vec::new();
    for s in bytes.chunks_exact(SLOT) {
        let len = u32_at(s, 0) as usize;
        if len == 0 || len > PAYLOAD_MAX {
            continue;
        }
        let payload = &s[8..8 + len];
        if crc32fast::hash(payload) != u32_at(s, 4) {
            continue;
        }
        let g = &s[GEN_AT..];
        let glen = u16::from_le_bytes([g[0], g[1]]) as usize;
        let generation_id = (glen > 0 && glen <= GEN_MAX)
            .then(|| &g[6..6 + glen])
            .filter(|id| crc32fast::hash(id) == u32_at(g, 2))
            .and_then(|id| std::str::from_utf8(id).ok())
            .map(str::to_owned);
        holds.push(SlotHold {
            payload: payload.to_vec(),
            generation_id,
        });
    }
    Ok(holds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_written_are_read_back_and_freed_ones_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("ledger.db");
        let slots = HoldSlots::create(&db).unwrap();
        let a = slots.put(b"{\"hold\":1}").unwrap();
        let b = slots.put(b"{\"hold\":2}").unwrap();
        let c = slots.put(b"{\"hold\":3}").unwrap();
        assert!(slots.set_generation(b, "gen-123"));
        slots.free(a);
        assert_eq!(slots.in_use(), 2);
        // The slot file as a restart reads it (the mapping is the page cache: no flush).
        let mut got: Vec<(String, Option<String>)> = read(&db)
            .unwrap()
            .into_iter()
            .map(|h| (String::from_utf8(h.payload).unwrap(), h.generation_id))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("{\"hold\":2}".into(), Some("gen-123".into())),
                ("{\"hold\":3}".into(), None)
            ]
        );
        // A reused slot does not inherit the previous occupant's generation id.
        slots.free(b);
        let d = slots.put(b"{\"hold\":4}").unwrap();
        assert_eq!(d, b, "the freed slot is reused first");
        let got = read(&db).unwrap();
        let h4 = got.iter().find(|h| h.payload == b"{\"hold\":4}").unwrap();
        assert_eq!(h4.generation_id, None);
        slots.free(c);
        slots.free(d);
        slots.close();
        assert!(!path_for(&db).exists(), "a clean stop leaves no file");
        assert!(read(&db).unwrap().is_empty());
    }

    #[test]
    fn a_torn_slot_is_free_and_oversized_records_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("ledger.db");
        let slots = HoldSlots::create(&db).unwrap();
        let a = slots.put(b"{\"whole\":true}").unwrap();
        assert!(slots.put(&vec![b'x'; PAYLOAD_MAX + 1]).is_none());
        assert!(!slots.set_generation(a, &"g".repeat(GEN_MAX + 1)));
        drop(slots);
        // A write killed half way: a length whose payload checksum does not match.
        let mut bytes = std::fs::read(path_for(&db)).unwrap();
        let s = SLOT; // slot 1
        bytes[s..s + 4].copy_from_slice(&5u32.to_le_bytes());
        bytes[s + 8..s + 13].copy_from_slice(b"torn!");
        std::fs::write(path_for(&db), &bytes).unwrap();
        let got = read(&db).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].payload, b"{\"whole\":true}");
    }

    #[test]
    fn when_every_slot_is_taken_the_caller_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("ledger.db");
        let slots = HoldSlots::create(&db).unwrap();
        let taken: Vec<u32> = (0..SLOTS).map(|_| slots.put(b"{}").unwrap()).collect();
        assert!(slots.put(b"{}").is_none());
        slots.free(taken[7]);
        assert_eq!(slots.put(b"{}"), Some(taken[7]));
    }
}

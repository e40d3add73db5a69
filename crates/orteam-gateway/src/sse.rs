//! Incremental SSE reading of upstream's stream, for every route.
//!
//! [`SseScanner`] is fed the upstream byte chunks as they arrive and splits them into whole
//! events; each event goes to the route's adapter ([`crate::wire::Wire::inspect_event`]), which
//! records the generation id, the usage and cost, a mid-stream error and the terminal event,
//! and says whether to forward it (only chat's final usage chunk is ever held back). Bytes go to
//! the client event by event, so a client never sees half an event.

use bytes::{Bytes, BytesMut};

use crate::wire::{SseEvent, StreamState, Wire};

/// See the module docs.
#[derive(Debug)]
pub struct SseScanner {
    wire: Wire,
    pending: BytesMut,
    forward_usage: bool,
    pub state: StreamState,
}

impl SseScanner {
    /// `forward_usage`: whether the client asked for chat's final usage chunk.
    pub fn new(wire: Wire, forward_usage: bool) -> Self {
        SseScanner {
            wire,
            pending: BytesMut::new(),
            forward_usage,
            state: StreamState::default(),
        }
    }

    /// Feeds upstream bytes; returns the bytes to forward to the client now.
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        self.pending.extend_from_slice(chunk);
        let mut out = BytesMut::new();
        while let Some(end) = find_event_end(&self.pending) {
            let event = self.pending.split_to(end);
            if self.inspect(&event) {
                out.extend_from_slice(&event);
            }
        }
        out.freeze()
    }

    /// Whatever is left when upstream closes (an incomplete final event is forwarded as is).
    pub fn finish(&mut self) -> Bytes {
        let rest = self.pending.split();
        if !rest.is_empty() {
            let _ = self.inspect(&rest);
        }
        rest.freeze()
    }

    /// Looks at one event (including its terminating blank line); returns whether to forward.
    fn inspect(&mut self, event: &[u8]) -> bool {
        let mut name = None;
        let mut forward = true;
        for line in event.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(n) = line.strip_prefix(b"event:") {
                name = Some(n.strip_prefix(b" ").unwrap_or(n));
                continue;
            }
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.strip_prefix(b" ").unwrap_or(data);
            let event = SseEvent { name, data };
            forward &= self
                .wire
                .inspect_event(&mut self.state, &event, self.forward_usage);
        }
        forward
    }
}

/// The end (exclusive) of the first complete event: a blank line (`\n\n` or `\r\n\r\n`).
fn find_event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' {
            if buf[i + 1] == b'\n' {
                return Some(i + 2);
            }
            if buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

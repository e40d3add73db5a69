//! The body of a streamed answer: upstream's SSE bytes pass through event by event as they
//! arrive (never buffered whole), while an [`SseScanner`] reads the generation id and the final
//! usage. When the stream ends — completely, cut by upstream, or dropped because the client
//! disconnected — the `on_end` callback runs exactly once with what was seen, so the
//! reservation is always settled or released.
//!
//! A complete stream's terminal event (`data: [DONE]`, `message_stop`, `response.completed`…) is held back until the settlement task has
//! made the usage event durable (journaled on SQLite, committed on PostgreSQL): a client that
//! saw the whole answer is never one the ledger could lose to a crash.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::task::JoinHandle;

use crate::sse::SseScanner;
use crate::upstream::UpstreamBody;

/// How a stream ended.
#[derive(Debug)]
pub enum StreamEnd {
    /// Upstream finished the stream (`[DONE]` seen or the body ended).
    Finished(SseScanner),
    /// Upstream failed while sending.
    UpstreamError(SseScanner, String),
    /// The client went away before the end.
    ClientGone(SseScanner),
}

/// Runs once when the stream ends; returns the settlement task, which answers whether the
/// usage event is durable.
pub type OnEnd = Box<dyn FnOnce(StreamEnd) -> JoinHandle<bool> + Send>;

// The whole body is boxed once by the response; boxing the scanner too would add an
// allocation per stream for nothing.
#[allow(clippy::large_enum_variant)]
enum State {
    Streaming {
        scanner: SseScanner,
        on_end: OnEnd,
    },
    /// Waiting for the settlement to commit before sending the last bytes.
    Settling {
        task: JoinHandle<bool>,
        last: Bytes,
    },
    Done,
}

/// See the module docs.
pub struct MeteredStream {
    upstream: UpstreamBody,
    state: State,
}

impl MeteredStream {
    pub fn new(upstream: UpstreamBody, scanner: SseScanner, on_end: OnEnd) -> Self {
        MeteredStream {
            upstream,
            state: State::Streaming { scanner, on_end },
        }
    }

    /// Ends the stream with `how`; returns the settlement task.
    fn end(&mut self, how: impl FnOnce(SseScanner) -> StreamEnd) -> Option<JoinHandle<bool>> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Streaming { scanner, on_end } => Some(on_end(how(scanner))),
            other => {
                self.state = other;
                None
            }
        }
    }

    fn settle_then_send(&mut self, last: Bytes) {
        if let Some(task) = self.end(StreamEnd::Finished) {
            self.state = State::Settling { task, last };
        }
    }
}

impl Body for MeteredStream {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Settling { task, last } => {
                    let Poll::Ready(settled) = Pin::new(task).poll(cx) else {
                        return Poll::Pending;
                    };
                    let last = std::mem::take(last);
                    this.state = State::Done;
                    if !matches!(settled, Ok(true)) {
                        // The usage event is not durable (the ledger is unreachable): the
                        // client never sees the answer's end, so it is not acknowledged.
                        return Poll::Ready(Some(Err(std::io::Error::other(
                            "the usage of this answer could not be recorded",
                        ))));
                    }
                    if last.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(last))));
                }
                State::Streaming { scanner, .. } => {
                    match Pin::new(&mut this.upstream).poll_frame(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Some(Ok(frame))) => {
                            let Ok(data) = frame.into_data() else {
                                continue; // trailers: nothing to forward
                            };
                            let out = scanner.feed(&data);
                            if scanner.state.done {
                                this.settle_then_send(out);
                                continue;
                            }
                            if !out.is_empty() {
                                return Poll::Ready(Some(Ok(Frame::data(out))));
                            }
                        }
                        Poll::Ready(None) => {
                            let rest = scanner.finish();
                            this.settle_then_send(rest);
                        }
                        Poll::Ready(Some(Err(err))) => {
                            let message = err.to_string();
                            let _ = this.end(|s| StreamEnd::UpstreamError(s, message.clone()));
                            return Poll::Ready(Some(Err(std::io::Error::other(message))));
                        }
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        // The settlement task runs on without us.
        let _ = self.end(StreamEnd::ClientGone);
    }
}

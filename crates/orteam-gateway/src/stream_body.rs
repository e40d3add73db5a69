//! The body of a streamed answer: upstream's SSE bytes pass through event by event as they
//! arrive (never buffered whole), while an [`SseScanner`] reads the generation id and the final
//! usage. When the stream ends — completely, cut by upstream, or dropped because the client
//! disconnected — the `on_end` callback runs exactly once with what was seen, so the
//! reservation is always settled or released.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::response::SseScanner;

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

type OnEnd = Box<dyn FnOnce(StreamEnd) + Send>;

/// See the module docs.
pub struct MeteredStream {
    upstream: Incoming,
    scanner: Option<SseScanner>,
    on_end: Option<OnEnd>,
}

impl MeteredStream {
    pub fn new(upstream: Incoming, scanner: SseScanner, on_end: OnEnd) -> Self {
        MeteredStream {
            upstream,
            scanner: Some(scanner),
            on_end: Some(on_end),
        }
    }

    fn end(&mut self, how: impl FnOnce(SseScanner) -> StreamEnd) {
        if let (Some(scanner), Some(on_end)) = (self.scanner.take(), self.on_end.take()) {
            on_end(how(scanner));
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
            let Some(scanner) = this.scanner.as_mut() else {
                return Poll::Ready(None);
            };
            match Pin::new(&mut this.upstream).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers: nothing to forward
                    };
                    let out = scanner.feed(&data);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                }
                Poll::Ready(None) => {
                    let rest = scanner.finish();
                    this.end(StreamEnd::Finished);
                    if rest.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(rest))));
                }
                Poll::Ready(Some(Err(err))) => {
                    let message = err.to_string();
                    this.end(|s| StreamEnd::UpstreamError(s, message.clone()));
                    return Poll::Ready(Some(Err(std::io::Error::other(message))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.scanner.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        self.end(StreamEnd::ClientGone);
    }
}

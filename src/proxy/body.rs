//! The response body handed to the client: the upstream body, frame by frame, under the
//! overall deadline, reporting to metrics when the exchange ends.
//!
//! Owns pass-through polling and one write-saving rule. Must not wait for data that has not
//! arrived, merge frames, or inspect them: each frame keeps its own chunk on the wire and
//! goes out in the same scheduling round it reached the proxy. Dropping it (the client went
//! away) drops the upstream body, which makes hyper close the upstream connection, so the
//! upstream sees the disconnect and stops generating.
//!
//! The write-saving rule: hyper's server flushes (one `writev`) every time this body says
//! `Pending`, and hyper's client hands over an upstream response one frame per task
//! wake-up, even when the whole response came in one read. Passing frames straight through
//! therefore cost one system call per frame plus one for the end of the body — five writes
//! to the client for a short four-chunk SSE answer, and on a VM each write that wakes a
//! reader on another core costs more than all of the proxy's own code. So when a frame
//! arrives, the body yields to the scheduler (up to [`PATIENCE`] times, letting the
//! upstream connection task hand over what it has *already read*) and collects what that
//! produced, then hands all of it to hyper before saying `Pending`; [`UpstreamBody::new`]
//! does the same before the response head is returned, so head and a short answer share
//! one write. Nothing waits on the network: a lone frame goes out after a few yields
//! (microseconds), and a batch is bounded by [`MAX_BATCH_FRAMES`] and [`MAX_BATCH_BYTES`].
//! Each frame stays its own chunk on the wire.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::BoxError;
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::Sleep;

use super::client::Lease;
use super::metrics::Finish;

/// Most frames collected into one write.
pub(crate) const MAX_BATCH_FRAMES: usize = 32;
/// Most data bytes collected into one write.
pub(crate) const MAX_BATCH_BYTES: usize = 64 * 1024;
/// Scheduler yields in a row that bring no new frame before a batch is complete. hyper's
/// client connection task needs two to three turns to hand over the next frame it has
/// already read (measured with the proxy-bench upstream).
const PATIENCE: u8 = 3;

/// The upstream's response body, cut off at the overall deadline.
pub(crate) struct UpstreamBody {
    inner: Incoming,
    /// Polled only while the upstream is silent, so fast bodies never touch the timer.
    deadline: Pin<Box<Sleep>>,
    /// Frames that have arrived and not yet been handed to hyper.
    ready: VecDeque<Frame<Bytes>>,
    ready_bytes: usize,
    /// Handing `ready` out: no more polling of `inner` until it is empty.
    draining: bool,
    /// Yields in a row since the last frame arrived.
    yields: u8,
    /// The upstream body ended (or failed, kept here until the frames before it are out).
    end: Option<Option<BoxError>>,
    /// hyper was given a chance to flush before the failure in `end` is reported.
    flushed_before_error: bool,
    /// The upstream sent a `Content-Length` (else it chunked its body, and so do we).
    framed_by_length: bool,
    /// The upstream connection, back to the pool once the body has been read to its end.
    lease: Option<Lease>,
    /// Metrics: the first byte out, and the end of the exchange when dropped.
    finish: Option<Finish>,
}

impl UpstreamBody {
    /// Wraps `inner` and gathers the frames that are already on their way (never waiting
    /// on the network), so the response head and a short answer leave in one write.
    pub(crate) async fn new(
        inner: Incoming,
        lease: Lease,
        deadline: tokio::time::Instant,
        finish: Option<Finish>,
    ) -> Self {
        let framed_by_length = inner.size_hint().exact().is_some();
        let mut body = UpstreamBody {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            ready: VecDeque::new(),
            ready_bytes: 0,
            draining: false,
            yields: 0,
            end: None,
            flushed_before_error: false,
            framed_by_length,
            lease: Some(lease),
            finish,
        };
        std::future::poll_fn(|cx| body.poll_gather(cx, true)).await;
        body.draining = !body.ready.is_empty();
        body
    }

    /// Collects frames that have already arrived. `Ready` when the batch is complete (the
    /// body ended, the batch is full, or [`PATIENCE`] yields brought nothing new);
    /// `Pending` while yielding, or — unless `yield_when_empty` — while nothing is in hand
    /// and the upstream is silent (then `inner` holds the waker).
    fn poll_gather(&mut self, cx: &mut Context<'_>, yield_when_empty: bool) -> Poll<()> {
        loop {
            if self.end.is_some() || self.batch_full() {
                self.yields = 0;
                return Poll::Ready(());
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        self.ready_bytes += data.len();
                    }
                    self.ready.push_back(frame);
                    self.yields = 0;
                }
                Poll::Ready(Some(Err(err))) => self.end = Some(Some(BoxError::from(err))),
                Poll::Ready(None) => {
                    self.end = Some(None);
                    if let Some(lease) = self.lease.take() {
                        lease.release();
                    }
                }
                Poll::Pending if self.ready.is_empty() && !yield_when_empty => {
                    return Poll::Pending
                }
                Poll::Pending if self.yields < PATIENCE => {
                    // Let the upstream connection task hand over what it has already read.
                    self.yields += 1;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Pending => {
                    self.yields = 0;
                    return Poll::Ready(());
                }
            }
        }
    }

    fn batch_full(&self) -> bool {
        self.ready.len() >= MAX_BATCH_FRAMES || self.ready_bytes >= MAX_BATCH_BYTES
    }

    /// The next gathered frame, then the end (or error) if the upstream body is over.
    fn hand_out(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(frame) = self.ready.pop_front() {
            self.draining = !self.ready.is_empty();
            if let Some(data) = frame.data_ref() {
                self.ready_bytes -= data.len();
                if let Some(finish) = &mut self.finish {
                    finish.sent(data.len());
                }
            }
            return Poll::Ready(Some(Ok(frame)));
        }
        self.draining = false;
        match self.end.take() {
            // hyper drops what it holds unsent when a body fails: say `Pending` once so it
            // flushes the frames before the failure, then fail.
            Some(Some(err)) if !self.flushed_before_error => {
                self.flushed_before_error = true;
                self.end = Some(Some(err));
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Some(Some(err)) => {
                self.end = Some(None);
                Poll::Ready(Some(Err(err)))
            }
            Some(None) => {
                self.end = Some(None);
                Poll::Ready(None)
            }
            None => Poll::Pending,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the proxy's overall timeout ended the upstream response")]
pub(crate) struct OverallTimeout;

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.draining || this.end.is_some() {
            return this.hand_out(cx);
        }
        match this.poll_gather(cx, false) {
            Poll::Ready(()) => this.hand_out(cx),
            Poll::Pending if this.yields > 0 => Poll::Pending,
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(OverallTimeout)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ready.is_empty()
            && match &self.end {
                Some(end) => end.is_none(),
                None => self.inner.is_end_stream(),
            }
    }

    fn size_hint(&self) -> SizeHint {
        let queued = self.ready_bytes as u64;
        // Exact only when the upstream framed its body by length: a chunked upstream body
        // stays chunked even when all of it has arrived, and a failure after the gathered
        // frames must never look like a complete body of known length.
        match (&self.end, self.framed_by_length) {
            (Some(None), true) => return SizeHint::with_exact(queued),
            (Some(_), _) => {
                let mut hint = SizeHint::new();
                hint.set_lower(queued);
                return hint;
            }
            (None, _) => {}
        }
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + queued);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + queued);
        }
        hint
    }
}

/// A response body with its request counted in flight (`demand.rs`): the count ends with
/// the body. When a drain's grace ends (the deployment's model is about to be stopped for
/// a swap), a stream gets one SSE `error` event and ends; any other body fails.
pub(crate) struct Guarded {
    inner: Option<UpstreamBody>,
    guard: Option<super::demand::InFlight>,
    cut: Option<Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>>,
    streamed: bool,
    ended: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("the response was ended: its model was stopped for a swap after the drain's grace")]
pub(crate) struct CutForSwap;

impl Guarded {
    pub(crate) fn new(
        inner: UpstreamBody,
        guard: Option<super::demand::InFlight>,
        streamed: bool,
    ) -> Self {
        let cut = guard
            .as_ref()
            .map(|g| Box::pin(g.cut.clone().cancelled_owned()));
        Guarded {
            inner: Some(inner),
            guard,
            cut,
            streamed,
            ended: false,
        }
    }

    fn end_for_swap(&mut self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.inner = None;
        self.cut = None;
        self.guard = None;
        self.ended = true;
        if !self.streamed {
            return Poll::Ready(Some(Err(Box::new(CutForSwap))));
        }
        let body = serde_json::json!({ "error": {
            "message": "this stream was ended because its model is being swapped out (the drain's grace, proxy.drain_grace_secs, ran out); send the request again",
            "type": "server_error",
            "param": null,
            "code": "stream_cut_by_swap",
        }});
        let event = super::error::sse_error_event(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            body.to_string().as_bytes(),
        );
        Poll::Ready(Some(Ok(Frame::data(event))))
    }
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if this.guard.as_ref().is_some_and(|g| g.cut.is_cancelled()) {
            return this.end_for_swap();
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.ended = true;
                this.guard = None;
                Poll::Ready(None)
            }
            Poll::Pending => match this.cut.as_mut().map(|c| c.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => this.end_for_swap(),
                _ => Poll::Pending,
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.as_ref().is_some_and(|i| i.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(i) => i.size_hint(),
            None => SizeHint::with_exact(0),
        }
    }
}

//! The response body handed to the client: the upstream body, frame by frame, under the
//! overall deadline, reporting to metrics when the exchange ends.
//!
//! Owns only pass-through polling. Must not buffer, coalesce or inspect frames: each frame
//! the upstream sends is yielded the moment it arrives. Dropping it (the client went away)
//! drops the upstream body, which makes hyper close the upstream connection, so the
//! upstream sees the disconnect and stops generating.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::BoxError;
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::Sleep;

use super::metrics::ProxyMetrics;
use super::route::Route;

/// Records the end of an exchange in the metrics when dropped, whatever the path.
pub(crate) struct Finish {
    pub(crate) metrics: Arc<ProxyMetrics>,
    pub(crate) route: Route,
    pub(crate) start: Instant,
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.metrics.finished(self.route, self.start.elapsed());
    }
}

/// The upstream's response body, cut off at the overall deadline.
pub(crate) struct UpstreamBody {
    inner: Incoming,
    /// Polled only while the upstream is silent, so fast bodies never touch the timer.
    deadline: Pin<Box<Sleep>>,
    _finish: Finish,
}

impl UpstreamBody {
    pub(crate) fn new(inner: Incoming, deadline: tokio::time::Instant, finish: Finish) -> Self {
        UpstreamBody {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            _finish: finish,
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
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(BoxError::from))),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(OverallTimeout)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

//! The response body the router sends to clients: either a small page of its own, or a dyno's
//! body streamed through, counting bytes and writing the request's log line when it ends.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use tokio::time::Sleep;

use super::errors::{H15, H18, H27};
use super::pool::Pool;
use super::proxy::ReqInfo;
use super::{millis, LogFields, RouterLog, UpBody};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Body of every response the router serves.
pub struct RouterBody {
    kind: Kind,
    bytes: u64,
    pending: Option<PendingLog>,
    idle: Option<(Duration, Pin<Box<Sleep>>)>,
}

enum Kind {
    Full(Option<Bytes>),
    Upstream(Incoming),
}

/// What is needed to write the log line (and give the connection back) once the body is over.
pub(crate) struct PendingLog {
    pub log: RouterLog,
    pub info: Arc<ReqInfo>,
    pub dyno: String,
    pub connect_ms: u64,
    pub sent_at: Instant,
    pub status: u16,
    pub conn: Option<(Arc<Pool>, SocketAddr, SendRequest<UpBody>)>,
    /// The client connection's slot, where the dyno connection goes when the exchange is over.
    pub slot: Option<super::pool::Slot>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Complete,
    /// No byte from the dyno within the idle window (H15).
    Idle,
    /// The dyno's body broke off (H18).
    Upstream,
    /// The client went away before the end (H27).
    Client,
}

impl PendingLog {
    fn finish(self, end: End, bytes: u64) {
        let fields = LogFields {
            dyno: Some(&self.dyno),
            connect: Some(self.connect_ms),
            service: Some(millis(self.sent_at.elapsed())),
            status: self.status,
            bytes: Some(bytes),
        };
        let line = match end {
            End::Complete => {
                if let Some((pool, addr, sender)) = self.conn {
                    match self.slot {
                        Some(slot) => {
                            let old = slot
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .replace((addr, sender));
                            if let Some((a, s)) = old {
                                pool.checkin(a, s);
                            }
                        }
                        None => pool.checkin(addr, sender),
                    }
                }
                self.info.line(None, &fields)
            }
            End::Idle => self.info.line(
                Some(H15),
                &LogFields {
                    status: 503,
                    ..fields
                },
            ),
            End::Upstream => self.info.line(
                Some(H18),
                &LogFields {
                    status: 503,
                    ..fields
                },
            ),
            End::Client => self.info.line(
                Some(H27),
                &LogFields {
                    status: 499,
                    ..fields
                },
            ),
        };
        (self.log)(&self.info.app, line);
    }
}

impl RouterBody {
    /// A body of the router's own (error pages); no log line attached.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        RouterBody {
            kind: Kind::Full(Some(bytes.into())),
            bytes: 0,
            pending: None,
            idle: None,
        }
    }

    pub fn empty() -> Self {
        RouterBody {
            kind: Kind::Full(None),
            bytes: 0,
            pending: None,
            idle: None,
        }
    }

    /// A dyno's body, streamed; `pending` is logged when it ends. `idle` bounds the wait between
    /// two chunks (H15).
    pub(crate) fn upstream(body: Incoming, pending: PendingLog, idle: Option<Duration>) -> Self {
        let mut b = RouterBody {
            kind: Kind::Upstream(body),
            bytes: 0,
            pending: Some(pending),
            idle: idle.map(|d| (d, Box::pin(tokio::time::sleep(d)))),
        };
        if let Kind::Upstream(inner) = &b.kind {
            // Bodiless responses (HEAD, 204, 304, Content-Length: 0) may never be polled.
            if inner.is_end_stream() {
                b.end(End::Complete);
            }
        }
        b
    }

    fn end(&mut self, end: End) {
        self.idle = None;
        if let Some(p) = self.pending.take() {
            p.finish(end, self.bytes);
        }
    }
}

impl Body for RouterBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let inner = match &mut this.kind {
            Kind::Full(b) => return Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Kind::Upstream(inner) => inner,
        };
        match Pin::new(&mut *inner).poll_frame(cx) {
            Poll::Pending => {
                if let Some((_, sleep)) = &mut this.idle {
                    if sleep.as_mut().poll(cx).is_ready() {
                        this.end(End::Idle);
                        return Poll::Ready(Some(Err("idle connection (H15)".into())));
                    }
                }
                Poll::Pending
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                let finished = inner.is_end_stream();
                if finished {
                    this.end(End::Complete);
                } else if let Some((d, sleep)) = &mut this.idle {
                    sleep.as_mut().reset(tokio::time::Instant::now() + *d);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.end(End::Upstream);
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.end(End::Complete);
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(b) => b.is_none(),
            Kind::Upstream(inner) => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Upstream(inner) => inner.size_hint(),
        }
    }
}

impl Drop for RouterBody {
    fn drop(&mut self) {
        if self.pending.is_some() {
            let end = match &self.kind {
                Kind::Upstream(inner) if inner.is_end_stream() => End::Complete,
                _ => End::Client,
            };
            self.end(end);
        }
    }
}

/// A client's request body on its way to the dyno, with a rolling idle window: a client that
/// stops sending mid-body for `idle` has its request ended (H28, Client Connection Idle).
pub(crate) struct ClientBody {
    inner: Incoming,
    idle: Duration,
    sleep: Pin<Box<Sleep>>,
    timed_out: Arc<std::sync::atomic::AtomicBool>,
}

impl ClientBody {
    pub fn new(
        inner: Incoming,
        idle: Duration,
        timed_out: Arc<std::sync::atomic::AtomicBool>,
    ) -> Self {
        ClientBody {
            inner,
            idle,
            sleep: Box::pin(tokio::time::sleep(idle)),
            timed_out,
        }
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                if this.sleep.as_mut().poll(cx).is_ready() {
                    this.timed_out
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    // The error aborts the request to the dyno; the router sees the failed
                    // send and logs H28 thanks to `timed_out`.
                    return Poll::Ready(Some(Err("client connection idle (H28)".into())));
                }
                Poll::Pending
            }
            Poll::Ready(r) => {
                this.sleep
                    .as_mut()
                    .reset(tokio::time::Instant::now() + this.idle);
                Poll::Ready(r.map(|r| r.map_err(BoxError::from)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

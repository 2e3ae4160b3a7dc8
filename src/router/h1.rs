//! The router's HTTP/1.1 fast path: one task per client connection owns the client socket and
//! the dyno connection its requests use. A request head is parsed in place (httparse) and
//! rewritten straight into one buffer for the dyno; the response head is rewritten the same way
//! and its body relayed as it arrives (chunked framing passed through verbatim, body bytes
//! counted for the log line). No per-request task, channel or header map: this is how the router
//! keeps pace with nginx (hyper's client hands every exchange between two tasks).
//!
//! Anything outside the common case (an `Upgrade`, `Expect`, a chunked request body, HTTP/1.0, an
//! absolute-form target, a head httparse rejects or one that is too large) hands the connection,
//! with the bytes read so far, to the hyper path in `proxy.rs` for the rest of its life.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use hyper::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::accept::ClientConn;
use super::errors::{HCode, H12, H13, H15, H17, H18, H27, H28};
use super::headers::{
    forwarded_for, is_hop_by_hop, raw_connection_tokens, request_id_from, sanitize, Peer,
};
use super::pool::ConnectError;
use super::proxy::{ReqInfo, Router, Wait};
use super::{millis, unix_ms, LogFields};

/// Headers a request or response may carry (hyper's limit too).
const MAX_HEADERS: usize = 100;
/// A request body smaller than this that has fully arrived goes out with its head in one write.
const COALESCE: usize = 16 * 1024;
/// Read size while relaying a large body.
const RELAY_CHUNK: usize = 64 * 1024;

/// What a client connection does after an exchange.
enum Next {
    KeepAlive,
    Close,
    /// Hand the connection (and the bytes in `buf`) to hyper.
    Hyper,
}

/// Serves one client connection.
pub(super) async fn serve<S>(router: Arc<Router>, mut io: S, peer: SocketAddr, conn: ClientConn)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut c = Client {
        router: router.clone(),
        peer: Peer {
            ip: peer.ip().to_canonical().to_string(),
        },
        buf: BytesMut::with_capacity(8192),
        out: Vec::with_capacity(1024),
        ubuf: BytesMut::with_capacity(8192),
        up: None,
    };
    let next = loop {
        match c.exchange(&mut io, &conn).await {
            Next::KeepAlive => continue,
            other => break other,
        }
    };
    if let Some((addr, s)) = c.up.take() {
        router.streams.checkin(addr, s);
    }
    if let Next::Hyper = next {
        let prefix = c.buf.split().freeze();
        drop(c);
        router
            .serve_connection(Prefixed { prefix, io }, peer, conn)
            .await;
    } else {
        let _ = io.shutdown().await;
    }
}

struct Client {
    router: Arc<Router>,
    peer: Peer,
    /// Bytes read from the client and not yet used.
    buf: BytesMut,
    /// The head being written (to the dyno, then to the client).
    out: Vec<u8>,
    /// Bytes read from the dyno and not yet used.
    ubuf: BytesMut,
    /// The dyno connection this client used last (its next request mostly goes there too).
    up: Option<(SocketAddr, TcpStream)>,
}

/// What the router needs of a request head once it is rewritten into `out`.
struct Head {
    /// Bytes of the head in `buf`.
    len: usize,
    method: String,
    path: String,
    /// Lowercased Host.
    host: String,
    request_id: String,
    fwd: String,
    body_len: u64,
    /// The body is chunked (passed through as it is; `body_len` is 0).
    chunked: bool,
    /// The body is still in (or yet to come into) `buf`: a page served instead of the dyno's
    /// answer must skip it, or close the connection.
    body_pending: bool,
    /// The client asked to close after this exchange.
    close: bool,
    is_head: bool,
    idempotent: bool,
}

/// How a dyno's response body is delimited.
enum Framing {
    None,
    Length(u64),
    Chunked(Chunked),
    /// Until the dyno closes the connection.
    Close,
}

/// How sending a request body ended.
enum BodyEnd {
    Done,
    /// The dyno stopped taking it (it may still answer).
    Upstream,
    /// The client stopped sending for the idle window (H28).
    ClientIdle,
    /// The client went away mid-body (H27).
    ClientGone,
}

/// What `ubuf` starts with.
enum RespHead {
    Partial,
    /// An interim (1xx, not 101) response of this many bytes.
    Interim(usize),
    /// A final response, rewritten into `out`: status, framing, whether the dyno closes after.
    Final(u16, Framing, bool),
    /// Not HTTP (H17).
    Bad,
}

/// Why no response head came.
enum NoHead {
    /// A reused connection the dyno had closed before answering: worth one more try.
    Stale,
    Code(HCode),
}

/// How relaying a response body ended.
struct Relayed {
    /// `None`: complete.
    error: Option<HCode>,
    bytes: u64,
    /// The dyno connection is at a message boundary and may take the next request.
    reusable: bool,
}

impl Client {
    async fn exchange<S>(&mut self, io: &mut S, conn: &ClientConn) -> Next
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        // 1. The request head, within the header read timeout (slow clients, idle keep-alives).
        let deadline = tokio::time::Instant::now() + self.router.config.header_read_timeout;
        let max = self.router.config.max_header_bytes;
        let mut head = loop {
            if !self.buf.is_empty() {
                let (proto, port) = (self.router.proto, self.router.port_header.as_bytes());
                match parse_request(&self.buf, &mut self.out, &self.peer, proto, port) {
                    Parsed::Complete(h) if h.len <= max => break h,
                    Parsed::Partial if self.buf.len() <= max => {}
                    Parsed::Complete(_) | Parsed::Partial => {
                        // Heads past the limit are refused, however they arrived.
                        let status = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
                        let html = super::errors::page(
                            "Request Header Fields Too Large",
                            &format!("The request's head is over the router's {} kB.", max / 1024),
                        );
                        let _ = write_page(io, &mut self.out, status, &html, true, true).await;
                        return Next::Close;
                    }
                    Parsed::Unusual => return Next::Hyper,
                }
            }
            self.buf.reserve(8192);
            match tokio::time::timeout_at(deadline, io.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return Next::Close,
            }
        };
        self.buf.advance(head.len);
        conn.head_complete();

        // 2. The app and the backends to try (held while it boots or wakes).
        let Some(app) = self.router.table.app_for_lower_host(&head.host) else {
            let (status, html) = super::errors::not_found_page();
            return self.page(io, &head, status, html).await;
        };
        self.router.table.touch(&app);
        let info = ReqInfo {
            app,
            // Moved, not copied: the head's fields are not needed again.
            method: std::mem::take(&mut head.method),
            path: std::mem::take(&mut head.path),
            host: sanitize(&head.host),
            request_id: std::mem::take(&mut head.request_id),
            fwd: std::mem::take(&mut head.fwd),
            protocol: self.router.proto,
        };
        let started = Instant::now();
        let cap = self.buf.len() + 64 * 1024;
        let waited = tokio::select! {
            biased;
            w = self.router.wait_for_backends(&info.app, &info.request_id) => w,
            _ = client_gone(io, &mut self.buf, cap) => {
                self.interrupted(&info, None, None, started);
                return Next::Close;
            }
        };
        let backends = match waited {
            Ok(b) => b,
            Err(Wait::NoSuchApp) => {
                let (status, html) = super::errors::not_found_page();
                return self.page(io, &head, status, html).await;
            }
            Err(Wait::Error(code)) => {
                let f = fields(None, None, None, 503, None);
                return self.fail(io, &head, &info, code, &f).await;
            }
        };

        // 3. A dyno connection: the one this client used last, the pool's, or a new one; on a
        //    connect failure the next backend, once.
        let mut chosen = None;
        let mut failure = None;
        for b in &backends {
            let t = Instant::now();
            match self.connection(b.addr).await {
                Ok((s, reused)) => {
                    chosen = Some((b, s, reused, millis(t.elapsed())));
                    break;
                }
                Err(e) => failure = Some((b, e, t.elapsed())),
            }
        }
        let Some((backend, mut up, mut reused, mut connect_ms)) = chosen else {
            let (b, e, t) = failure.expect("at least one backend tried");
            let code = self.router.connect_code(b, e);
            let f = fields(Some(&b.dyno), Some(millis(t)), None, 503, None);
            return self.fail(io, &head, &info, code, &f).await;
        };
        let dyno = Some(backend.dyno.as_str());

        // 4. The request: its head (with a small body that is all here) in one write, then the
        //    rest of the body as the client sends it; then the response head (H12, H13).
        let in_buf = (self.buf.len() as u64).min(head.body_len) as usize;
        let whole = !head.chunked && in_buf as u64 == head.body_len && in_buf <= COALESCE;
        if whole {
            self.out.extend_from_slice(&self.buf[..in_buf]);
            self.buf.advance(in_buf);
        }
        // From here on the body goes to the dyno (or the connection ends).
        head.body_pending = false;
        let mut close = head.close;
        let sent_at = Instant::now();
        let (status, framing, up_close) = loop {
            if up.write_all(&self.out).await.is_ok() && !whole {
                match self.send_body(io, &mut up, &head).await {
                    BodyEnd::Done => {}
                    // Its answer may still come; the client's unread body ends the connection.
                    BodyEnd::Upstream => close = true,
                    BodyEnd::ClientIdle => {
                        let service = Some(millis(sent_at.elapsed()));
                        let f = fields(dyno, Some(connect_ms), service, 503, Some(0));
                        self.fail(io, &head, &info, H28, &f).await;
                        return Next::Close;
                    }
                    BodyEnd::ClientGone => {
                        self.interrupted(&info, dyno, Some(connect_ms), started);
                        return Next::Close;
                    }
                }
            }
            let code = match self
                .response_head(io, &mut up, sent_at, &head, &mut close)
                .await
            {
                Ok(r) => break r,
                Err(NoHead::Stale) if reused && whole && head.idempotent => {
                    // A kept-alive connection the dyno had closed: once more on a new one.
                    let t = Instant::now();
                    let got = self.router.streams.connect(backend.addr).await;
                    connect_ms += millis(t.elapsed());
                    match got {
                        Ok(s) => {
                            (up, reused) = (s, false);
                            continue;
                        }
                        Err(e) => {
                            let code = self.router.connect_code(backend, e);
                            let f = fields(dyno, Some(connect_ms), None, 503, None);
                            return self.fail(io, &head, &info, code, &f).await;
                        }
                    }
                }
                Err(NoHead::Stale) => H13,
                Err(NoHead::Code(H27)) => {
                    self.interrupted(&info, dyno, Some(connect_ms), started);
                    return Next::Close;
                }
                Err(NoHead::Code(c)) => c,
            };
            let service = Some(millis(sent_at.elapsed()));
            let f = fields(dyno, Some(connect_ms), service, 503, Some(0));
            return self.fail(io, &head, &info, code, &f).await;
        };

        // 5. The response head for the client (in `out`), then the body as the dyno sends it.
        let r = self.relay(io, &mut up, framing).await;
        let status = match r.error {
            None => status,
            Some(H27) => 499,
            Some(_) => 503,
        };
        let service = Some(millis(sent_at.elapsed()));
        let f = fields(dyno, Some(connect_ms), service, status, Some(r.bytes));
        match r.error {
            None => (self.router.log)(&info.app, info.line(None, &f)),
            Some(c) => self.router.log_error(&info, c, &f),
        }
        if r.error.is_none() && r.reusable && !up_close {
            self.up = Some((backend.addr, up));
        }
        if r.error.is_some() || close {
            return Next::Close;
        }
        Next::KeepAlive
    }

    /// A connection to `addr` and whether it was used before.
    async fn connection(&mut self, addr: SocketAddr) -> Result<(TcpStream, bool), ConnectError> {
        match self.up.take() {
            Some((a, s)) if a == addr => return Ok((s, true)),
            Some((a, s)) => self.router.streams.checkin(a, s),
            None => {}
        }
        if let Some(s) = self.router.streams.checkout(addr) {
            return Ok((s, true));
        }
        Ok((self.router.streams.connect(addr).await?, false))
    }

    /// Sends the rest of a request body (Content-Length or chunked), the part in `buf` first,
    /// bounded by the client idle window (H28).
    async fn send_body<S>(&mut self, io: &mut S, up: &mut TcpStream, head: &Head) -> BodyEnd
    where
        S: AsyncRead + Unpin,
    {
        let idle = self.router.config.client_idle_timeout;
        let mut chunked = head.chunked.then(Chunked::default);
        let mut left = if head.chunked {
            u64::MAX
        } else {
            head.body_len
        };
        loop {
            let n = match &mut chunked {
                Some(c) => match c.feed(&self.buf) {
                    Ok((n, _, done)) => {
                        if done {
                            left = n as u64;
                        }
                        n
                    }
                    // Broken framing: the dyno gets what made sense, the client no answer.
                    Err(()) => return BodyEnd::ClientGone,
                },
                None => (self.buf.len() as u64).min(left) as usize,
            };
            if n > 0 {
                if up.write_all(&self.buf[..n]).await.is_err() {
                    return BodyEnd::Upstream;
                }
                self.buf.advance(n);
                left -= n as u64;
            }
            if left == 0 {
                return BodyEnd::Done;
            }
            self.buf.reserve(RELAY_CHUNK);
            match tokio::time::timeout(idle, io.read_buf(&mut self.buf)).await {
                Err(_) => return BodyEnd::ClientIdle,
                Ok(Ok(0)) | Ok(Err(_)) => return BodyEnd::ClientGone,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Reads the dyno's response head into `ubuf` (interim 1xx responses go on to the client),
    /// within the request timeout, watching for the client going away.
    async fn response_head<S>(
        &mut self,
        io: &mut S,
        up: &mut TcpStream,
        sent_at: Instant,
        req: &Head,
        close: &mut bool,
    ) -> Result<(u16, Framing, bool), NoHead>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let deadline = tokio::time::Instant::from_std(sent_at + self.router.config.request_timeout);
        let cap = self.buf.len() + 64 * 1024;
        let mut any = false;
        self.ubuf.clear();
        loop {
            if !self.ubuf.is_empty() {
                match self.rewrite_response(req, close) {
                    RespHead::Bad => return Err(NoHead::Code(H17)),
                    RespHead::Partial => {
                        if self.ubuf.len() > self.router.config.max_header_bytes {
                            return Err(NoHead::Code(H17));
                        }
                    }
                    RespHead::Final(status, framing, up_close) => {
                        return Ok((status, framing, up_close))
                    }
                    RespHead::Interim(n) => {
                        // 103 Early Hints and friends: passed on as they are.
                        let sent = match io.write_all(&self.ubuf[..n]).await {
                            Ok(()) => io.flush().await,
                            e => e,
                        };
                        if sent.is_err() {
                            return Err(NoHead::Code(H27));
                        }
                        self.ubuf.advance(n);
                        continue;
                    }
                }
            }
            self.ubuf.reserve(8192);
            let read = tokio::select! {
                biased;
                r = tokio::time::timeout_at(deadline, up.read_buf(&mut self.ubuf)) => r,
                _ = client_gone(io, &mut self.buf, cap) => return Err(NoHead::Code(H27)),
            };
            match read {
                Err(_) => return Err(NoHead::Code(H12)),
                Ok(Ok(n)) if n > 0 => any = true,
                _ if !any => return Err(NoHead::Stale),
                _ => return Err(NoHead::Code(H13)),
            }
        }
    }

    /// Rewrites a complete final response head at the start of `ubuf` into `out` for the
    /// client (and takes it out of `ubuf`): its status, how its body is delimited and whether
    /// the dyno closes the connection after it.
    fn rewrite_response(&mut self, req: &Head, close: &mut bool) -> RespHead {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let len = match resp.parse(&self.ubuf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return RespHead::Partial,
            Err(_) => return RespHead::Bad,
        };
        let Some(status) = resp.code else {
            return RespHead::Bad;
        };
        if (100..200).contains(&status) && status != 101 {
            return RespHead::Interim(len);
        }
        // With both, Transfer-Encoding rules and Content-Length goes (it would invite smuggling).
        let te = resp
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("transfer-encoding"));
        let tokens = raw_connection_tokens(resp.headers);
        // 101 without an Upgrade asked for: whatever the dyno speaks next, not HTTP.
        let up_close = resp.version == Some(0) && !tokens.iter().any(|t| t == "keep-alive")
            || tokens.iter().any(|t| t == "close")
            || status == 101;
        let mut length = None;
        let mut chunked = false;
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(itoa(status as u64, &mut [0; 20]));
        out.push(b' ');
        out.extend_from_slice(resp.reason.unwrap_or("").as_bytes());
        out.extend_from_slice(b"\r\n");
        for h in resp.headers.iter() {
            let name = h.name;
            if name.eq_ignore_ascii_case("content-length") {
                let Some(v) = parse_length(h.value) else {
                    return RespHead::Bad;
                };
                if length.is_some_and(|l| l != v) {
                    return RespHead::Bad;
                }
                length = Some(v);
                if te {
                    continue;
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = last_coding_is_chunked(h.value);
                // Passed through as it is: the framing goes through verbatim.
            } else if is_hop_by_hop(name, &tokens) {
                continue;
            }
            put_header(out, name.as_bytes(), h.value);
        }
        let bodiless = req.is_head || status < 200 || status == 204 || status == 304;
        let framing = if bodiless {
            Framing::None
        } else if te {
            if chunked {
                Framing::Chunked(Chunked::default())
            } else {
                Framing::Close
            }
        } else {
            match length {
                Some(0) => Framing::None,
                Some(n) => Framing::Length(n),
                None => Framing::Close,
            }
        };
        if matches!(framing, Framing::Close) {
            *close = true;
        }
        if *close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        self.ubuf.advance(len);
        RespHead::Final(status, framing, up_close)
    }

    /// Writes the head in `out` and relays the body; bodies that have fully arrived with their
    /// head go out in the same write.
    async fn relay<S>(&mut self, io: &mut S, up: &mut TcpStream, framing: Framing) -> Relayed
    where
        S: AsyncWrite + Unpin,
    {
        let idle = self.router.config.idle_timeout;
        let mut bytes = 0u64;
        let (mut left, mut chunked, until_close) = match framing {
            Framing::None => (0, None, false),
            Framing::Length(n) => (n, None, false),
            Framing::Chunked(c) => (u64::MAX, Some(c), false),
            Framing::Close => (u64::MAX, None, true),
        };
        let mut head_sent = false;
        loop {
            // What of `ubuf` belongs to this body.
            let take = match &mut chunked {
                Some(c) => match c.feed(&self.ubuf) {
                    Ok((n, data, fin)) => {
                        bytes += data;
                        if fin {
                            left = 0;
                        }
                        n
                    }
                    Err(()) => {
                        return Relayed {
                            error: Some(H18),
                            bytes,
                            reusable: false,
                        }
                    }
                },
                None => {
                    let n = (self.ubuf.len() as u64).min(left) as usize;
                    left -= n as u64;
                    bytes += n as u64;
                    n
                }
            };
            let part = &self.ubuf[..take];
            let wrote = if !head_sent {
                head_sent = true;
                if part.len() <= COALESCE {
                    self.out.extend_from_slice(part);
                    io.write_all(&self.out).await
                } else {
                    match io.write_all(&self.out).await {
                        Ok(()) => io.write_all(part).await,
                        e => e,
                    }
                }
            } else if part.is_empty() {
                Ok(())
            } else {
                io.write_all(part).await
            };
            // Out to the client before waiting on the dyno again (TLS holds records until then).
            let wrote = match wrote {
                Ok(()) => io.flush().await,
                e => e,
            };
            let extra = self.ubuf.len() > take;
            self.ubuf.clear();
            if wrote.is_err() {
                return Relayed {
                    error: Some(H27),
                    bytes,
                    reusable: false,
                };
            }
            if left == 0 {
                // Bytes past the end of the response: the dyno is out of step; don't reuse it.
                return Relayed {
                    error: None,
                    bytes,
                    reusable: !extra && !until_close,
                };
            }
            self.ubuf.reserve(RELAY_CHUNK);
            let read = match idle {
                Some(d) => match tokio::time::timeout(d, up.read_buf(&mut self.ubuf)).await {
                    Ok(r) => r,
                    Err(_) => {
                        return Relayed {
                            error: Some(H15),
                            bytes,
                            reusable: false,
                        }
                    }
                },
                None => up.read_buf(&mut self.ubuf).await,
            };
            match read {
                Ok(n) if n > 0 => {}
                _ if until_close => {
                    return Relayed {
                        error: None,
                        bytes,
                        reusable: false,
                    }
                }
                _ => {
                    return Relayed {
                        error: Some(H18),
                        bytes,
                        reusable: false,
                    }
                }
            }
        }
    }

    /// Serves a page of the router's own (404) with no log line.
    async fn page<S>(&mut self, io: &mut S, head: &Head, status: StatusCode, html: String) -> Next
    where
        S: AsyncWrite + Unpin,
    {
        // A request body that is not all here can't be skipped safely: close after the page.
        let pending = head.body_pending;
        let close =
            head.close || pending && (head.chunked || head.body_len > self.buf.len() as u64);
        if pending && !close {
            self.buf.advance(head.body_len as usize);
        }
        match write_page(io, &mut self.out, status, &html, close, !head.is_head).await {
            Ok(()) if !close => Next::KeepAlive,
            _ => Next::Close,
        }
    }

    /// Logs an error line and serves its 503 page.
    async fn fail<S>(
        &mut self,
        io: &mut S,
        head: &Head,
        info: &ReqInfo,
        code: HCode,
        f: &LogFields<'_>,
    ) -> Next
    where
        S: AsyncWrite + Unpin,
    {
        self.router.log_error(info, code, f);
        let html = super::errors::error_html(code);
        self.page(io, head, StatusCode::SERVICE_UNAVAILABLE, html)
            .await
    }

    /// Logs H27: the client went away while the router waited for a dyno or its answer.
    fn interrupted(
        &self,
        info: &ReqInfo,
        dyno: Option<&str>,
        connect: Option<u64>,
        started: Instant,
    ) {
        let service = Some(millis(started.elapsed()));
        self.router
            .log_error(info, H27, &fields(dyno, connect, service, 499, None));
    }
}

fn fields(
    dyno: Option<&str>,
    connect: Option<u64>,
    service: Option<u64>,
    status: u16,
    bytes: Option<u64>,
) -> LogFields<'_> {
    LogFields {
        dyno,
        connect,
        service,
        status,
        bytes,
    }
}

/// Resolves when the client closes its connection (or it fails); reads what it sends meanwhile
/// (a pipelined request) into `buf`, up to `cap` bytes, then stops looking.
async fn client_gone<S>(io: &mut S, buf: &mut BytesMut, cap: usize)
where
    S: AsyncRead + Unpin,
{
    while buf.len() < cap {
        buf.reserve(4096);
        match io.read_buf(buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
    std::future::pending::<()>().await
}

/// Writes one of the router's own pages.
async fn write_page<S>(
    io: &mut S,
    out: &mut Vec<u8>,
    status: StatusCode,
    html: &str,
    close: bool,
    with_body: bool,
) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(
        b"\r\ncontent-type: text/html; charset=utf-8\r\ncache-control: no-cache, no-store\r\ncontent-length: ",
    );
    out.extend_from_slice(itoa(html.len() as u64, &mut [0; 20]));
    if close {
        out.extend_from_slice(b"\r\nconnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
    if with_body {
        out.extend_from_slice(html.as_bytes());
    }
    io.write_all(out).await?;
    io.flush().await
}

enum Parsed {
    Complete(Head),
    Partial,
    /// Valid, maybe, but not for this path: hyper takes the connection.
    Unusual,
}

/// Parses a request head at the start of `buf` and, when it is complete and ordinary, writes
/// the head to send to the dyno into `out`: hop-by-hop headers dropped, X-Forwarded-For/Proto/
/// Port, X-Request-Id, X-Request-Start and Via set.
fn parse_request(
    buf: &[u8],
    out: &mut Vec<u8>,
    peer: &Peer,
    proto: &'static str,
    port: &[u8],
) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Unusual,
    };
    let (Some(method), Some(path), Some(1)) = (req.method, req.path, req.version) else {
        return Parsed::Unusual;
    };
    if !path.starts_with('/') || method == "CONNECT" {
        return Parsed::Unusual;
    }
    let tokens = raw_connection_tokens(req.headers);
    let mut host = None;
    let mut body_len = None;
    let mut chunked = false;
    let mut ids = 0;
    let mut client_id = None;
    let mut xff: Option<String> = None;
    let mut via: Option<String> = None;
    for h in req.headers.iter() {
        let n = h.name;
        if n.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return Parsed::Unusual;
            }
            host = Some(h.value);
        } else if n.eq_ignore_ascii_case("content-length") {
            let Some(v) = parse_length(h.value) else {
                return Parsed::Unusual;
            };
            if body_len.is_some_and(|l| l != v) {
                return Parsed::Unusual;
            }
            body_len = Some(v);
        } else if n.eq_ignore_ascii_case("transfer-encoding") {
            // Only plain `chunked` (passed through); anything else is hyper's to judge.
            if chunked || !h.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Parsed::Unusual;
            }
            chunked = true;
        } else if n.eq_ignore_ascii_case("upgrade") || n.eq_ignore_ascii_case("expect") {
            return Parsed::Unusual;
        } else if n.eq_ignore_ascii_case("x-request-id") {
            ids += 1;
            client_id = std::str::from_utf8(h.value).ok();
        } else if n.eq_ignore_ascii_case("x-forwarded-for") {
            append_list(&mut xff, h.value);
        } else if n.eq_ignore_ascii_case("via") {
            append_list(&mut via, h.value);
        }
    }
    let Some(host_raw) = host.and_then(|h| std::str::from_utf8(h).ok()) else {
        return Parsed::Unusual;
    };
    if chunked && body_len.is_some() {
        // Both framings at once: how requests get smuggled. hyper rejects it.
        return Parsed::Unusual;
    }
    let request_id = request_id_from(if ids == 1 { client_id } else { None });
    let fwd = forwarded_for(xff, peer);

    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for h in req.headers.iter() {
        let n = h.name;
        if is_hop_by_hop(n, &tokens)
            || n.eq_ignore_ascii_case("x-request-id")
            || n.eq_ignore_ascii_case("x-forwarded-for")
            || n.eq_ignore_ascii_case("x-forwarded-proto")
            || n.eq_ignore_ascii_case("x-forwarded-port")
            || n.eq_ignore_ascii_case("x-request-start")
            || n.eq_ignore_ascii_case("via")
        {
            continue;
        }
        put_header(out, n.as_bytes(), h.value);
    }
    put_header(out, b"X-Forwarded-For", fwd.as_bytes());
    put_header(out, b"X-Forwarded-Proto", proto.as_bytes());
    put_header(out, b"X-Forwarded-Port", port);
    put_header(out, b"X-Request-Id", request_id.as_bytes());
    put_header(out, b"X-Request-Start", itoa(unix_ms(), &mut [0; 20]));
    match via {
        Some(v) => {
            out.extend_from_slice(b"Via: ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b", 1.1 dyno\r\n");
        }
        None => out.extend_from_slice(b"Via: 1.1 dyno\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    Parsed::Complete(Head {
        len,
        method: method.to_string(),
        path: path.replace('"', "%22"),
        host: host_raw.trim().to_ascii_lowercase(),
        request_id,
        fwd,
        body_len: body_len.unwrap_or(0),
        chunked,
        body_pending: chunked || body_len.unwrap_or(0) > 0,
        close: tokens.iter().any(|t| t == "close"),
        is_head: method == "HEAD",
        idempotent: matches!(
            method,
            "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
        ),
    })
}

fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A Content-Length value: digits only.
fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn last_coding_is_chunked(v: &[u8]) -> bool {
    v.rsplit(|&b| b == b',')
        .next()
        .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// Appends a comma-separated header's non-empty values to a list.
fn append_list(list: &mut Option<String>, value: &[u8]) {
    let Ok(v) = std::str::from_utf8(value) else {
        return;
    };
    let v = v.trim();
    if v.is_empty() {
        return;
    }
    match list {
        Some(l) => {
            l.push_str(", ");
            l.push_str(v);
        }
        None => *list = Some(v.to_string()),
    }
}

/// `n` in decimal, in `buf`.
fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// Follows a chunked body as it passes through, to find where it ends.
#[derive(Debug, Default)]
pub(crate) struct Chunked {
    state: ChunkState,
    size: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// The chunk size's hex digits.
    #[default]
    Size,
    /// A chunk extension, up to the line's end.
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    TrailerLine,
    EndLf,
    Done,
}

impl Chunked {
    /// Takes bytes of the body: how many belong to it (all, unless it ends within them), how
    /// many of those were chunk data, and whether it ended. `Err` on broken framing.
    pub fn feed(&mut self, data: &[u8]) -> Result<(usize, u64, bool), ()> {
        use ChunkState::*;
        let mut i = 0;
        let mut payload = 0u64;
        while i < data.len() && self.state != Done {
            if self.state == Data {
                let n = (self.size.min((data.len() - i) as u64)) as usize;
                i += n;
                payload += n as u64;
                self.size -= n as u64;
                if self.size == 0 {
                    self.state = DataCr;
                }
                continue;
            }
            let b = data[i];
            i += 1;
            self.state = match (self.state, b) {
                (Size, b) if b.is_ascii_hexdigit() => {
                    let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                    self.size = self.size.checked_mul(16).ok_or(())? + d;
                    Size
                }
                (Size, b';' | b' ' | b'\t') => Ext,
                (Size | Ext, b'\r') => SizeLf,
                (Size | Ext | SizeLf, b'\n') if self.size == 0 => TrailerStart,
                (Size | Ext | SizeLf, b'\n') => Data,
                (Ext, _) => Ext,
                (DataCr, b'\r') => DataLf,
                (DataCr | DataLf, b'\n') => Size,
                (TrailerStart, b'\r') => EndLf,
                (TrailerStart | EndLf, b'\n') => Done,
                (TrailerLine, b'\n') => TrailerStart,
                (TrailerStart | TrailerLine, _) => TrailerLine,
                _ => return Err(()),
            };
        }
        Ok((i, payload, self.state == Done))
    }
}

/// A stream whose first bytes were already read: they are read again first. Lets hyper take
/// over a connection the fast path has begun.
pub(super) struct Prefixed<S> {
    prefix: Bytes,
    io: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_framing_is_followed_across_reads() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        for split in 0..body.len() {
            let mut c = Chunked::default();
            let (n1, d1, f1) = c.feed(&body[..split]).unwrap();
            assert_eq!(n1, split.min(body.len() - 4));
            let (n2, d2, f2) = if f1 {
                (0, 0, true)
            } else {
                c.feed(&body[split..]).unwrap()
            };
            assert_eq!(n1 + n2, body.len() - 4, "split {split}");
            assert_eq!(d1 + d2, 11);
            assert!(f2);
        }
    }

    #[test]
    fn broken_chunked_framing_is_an_error() {
        assert!(Chunked::default().feed(b"zz\r\n").is_err());
        assert!(Chunked::default().feed(b"2\r\nabX").is_err());
        assert!(Chunked::default().feed(b"ffffffffffffffffff\r\n").is_err());
    }

    #[test]
    fn request_heads_are_rewritten() {
        let peer = Peer {
            ip: "10.1.2.3".into(),
        };
        let mut out = Vec::new();
        let req = b"POST /a?b=\"c\" HTTP/1.1\r\nHost: Hello.LocalHost:5000\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nX-Forwarded-For: 1.1.1.1\r\nVia: 1.0 other\r\nContent-Length: 3\r\n\r\nabc";
        let Parsed::Complete(h) = parse_request(req, &mut out, &peer, "http", b"80") else {
            panic!("not parsed");
        };
        assert_eq!(h.len, req.len() - 3);
        assert_eq!((h.body_len, h.close, h.idempotent), (3, false, false));
        assert_eq!(h.host, "hello.localhost:5000");
        assert_eq!(h.path, "/a?b=%22c%22");
        assert_eq!(h.fwd, "1.1.1.1, 10.1.2.3");
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("POST /a?b=\"c\" HTTP/1.1\r\nHost: Hello.LocalHost:5000\r\n"));
        assert!(!out.to_ascii_lowercase().contains("x-secret"), "{out}");
        assert!(!out.contains("Connection"), "{out}");
        assert!(
            out.contains("X-Forwarded-For: 1.1.1.1, 10.1.2.3\r\n"),
            "{out}"
        );
        assert!(out.contains("X-Forwarded-Port: 80\r\n"), "{out}");
        assert!(out.contains("Via: 1.0 other, 1.1 dyno\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\n"));
    }

    #[test]
    fn unusual_requests_go_to_hyper() {
        let peer = Peer { ip: "::1".into() };
        let mut out = Vec::new();
        for req in [
            &b"GET / HTTP/1.0\r\nHost: a.localhost\r\n\r\n"[..],
            b"GET http://a.localhost/ HTTP/1.1\r\nHost: a.localhost\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a.localhost\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a.localhost\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET\x01/ HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                matches!(parse_request(req, &mut out, &peer, "http", b"80"), Parsed::Unusual),
                "{}",
                String::from_utf8_lossy(req)
            );
        }
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nHost: a", &mut out, &peer, "http", b"80"),
            Parsed::Partial
        ));
    }
}

//! The daemon's HTTP API on the Unix socket: transport, request decoding, error mapping, and
//! the route table. Routes come from `daemon::api::routes()`: each pairs an endpoint of
//! `crate::api` (its method and path pattern, request and response types) with its handler in
//! `daemon/api/<topic>.rs`, so a route cannot exist without its typed endpoint. The same table
//! is served over HTTPS by `api_https` (authenticated there); a request that names a host path
//! (`Endpoint::unix_only`) is refused unless it came over the socket. `Range` headers are
//! applied here to every list answer (Heroku's pagination).

use super::{run, Daemon};
use crate::api::{self, Endpoint, ErrorBody, Seg};
use anyhow::Result;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use std::convert::Infallible;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

type Body = BoxBody<Bytes, Infallible>;
pub type Resp = Response<Body>;

pub async fn serve(d: Arc<Daemon>) -> Result<()> {
    let path = d.paths.socket();
    let _ = std::fs::remove_file(&path);
    // Created 0700 (the daemon's umask is 077 from its start), then 0600: no window in which
    // another user could connect, and no flip of the process-wide umask while threads run.
    let mut listener = bind(&path)?;
    // SIGHUP: a CLI found the socket gone while this daemon holds the lock (someone removed
    // it); it is made again, so the CLI connects instead of failing on the lock.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let routes = Arc::new(super::api::routes());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => accepted?.0,
            _ = hup.recv() => {
                if std::fs::symlink_metadata(&path).is_err() {
                    tracing::warn!("the API socket {} was removed: binding it again", path.display());
                    listener = bind(&path)?;
                }
                continue;
            }
        };
        let (d, routes) = (d.clone(), routes.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let (d, routes) = (d.clone(), routes.clone());
                async move { Ok::<_, Infallible>(handle(d, &routes, req, Transport::Unix).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
    }
}

fn bind(path: &std::path::Path) -> Result<tokio::net::UnixListener> {
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// An API failure: HTTP status, Heroku error id, message.
pub struct Fail(pub StatusCode, pub &'static str, pub String);

impl From<anyhow::Error> for Fail {
    fn from(e: anyhow::Error) -> Self {
        Fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!("{e:#}"),
        )
    }
}

impl From<run::RunError> for Fail {
    fn from(e: run::RunError) -> Self {
        Fail(e.status, e.id, e.message)
    }
}

impl From<super::routing::ApiError> for Fail {
    fn from(e: super::routing::ApiError) -> Self {
        use super::routing::ApiError as E;
        match e {
            E::Invalid(m) => invalid(m),
            E::NotFound(m) => Fail(StatusCode::NOT_FOUND, "not_found", m),
            E::Internal(e) => e.into(),
        }
    }
}

pub fn not_found(what: &str) -> Fail {
    Fail(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("Couldn't find that {what}."),
    )
}

pub fn not_found_msg(msg: String) -> Fail {
    Fail(StatusCode::NOT_FOUND, "not_found", msg)
}

pub fn invalid(msg: impl Into<String>) -> Fail {
    Fail(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_params",
        msg.into(),
    )
}

fn json<T: Serialize>(status: StatusCode, v: &T) -> Resp {
    let body = serde_json::to_vec_pretty(v).unwrap_or_default();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header(api::VERSION_HEADER, api::VERSION)
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap()
}

/// A streamed body fed by a channel (build output, log tails, event streams, git's answers).
pub struct ChannelBody(pub mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

fn streamed(rx: mpsc::Receiver<Bytes>) -> Resp {
    Response::builder()
        .header("content-type", "text/plain; charset=utf-8")
        .header(api::VERSION_HEADER, api::VERSION)
        .body(BodyExt::boxed(ChannelBody(rx)))
        .unwrap()
}

fn query(req: &Request<Incoming>) -> Vec<(String, String)> {
    api::decode_query(req.uri().query().unwrap_or(""))
}

/// Where a request came from: the Unix socket (the dyno CLI on this machine, root) or the
/// HTTPS API (anyone holding the token; its base URL, to hand out URLs of its own).
#[derive(Debug, Clone)]
pub enum Transport {
    Unix,
    Https { base: String },
}

tokio::task_local! {
    static TRANSPORT: Transport;
}

/// The HTTPS API's base URL when the request being handled came over it: handlers hand out URLs
/// (`logplex_url`, `attach_url`) the client can reach.
pub fn https_base() -> Option<String> {
    TRANSPORT
        .try_with(|t| match t {
            Transport::Https { base } => Some(base.clone()),
            Transport::Unix => None,
        })
        .ok()
        .flatten()
}

type Handler = Box<
    dyn Fn(
            Arc<Daemon>,
            Vec<String>,
            Request<Incoming>,
            bool,
        ) -> Pin<Box<dyn Future<Output = Result<Resp, Fail>> + Send>>
        + Send
        + Sync,
>;

/// One entry of the route table: an endpoint's method and path pattern, and its handler.
pub struct Route {
    method: Method,
    segs: &'static [Seg],
    handler: Handler,
}

impl Route {
    /// An endpoint answered with JSON: the handler takes the decoded request and returns the
    /// endpoint's response type.
    pub fn json<E, F, Fut>(f: F) -> Route
    where
        E: Endpoint + Send + 'static,
        E::Response: Serialize,
        F: Fn(Arc<Daemon>, E) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<E::Response, Fail>> + Send + 'static,
    {
        Route::new(move |d, e: E, _| {
            let answer = f(d, e);
            async move { Ok(json(E::STATUS, &answer.await?)) }
        })
    }

    /// An endpoint answered with a stream of text (build output, a log tail).
    pub fn stream<E, F, Fut>(f: F) -> Route
    where
        E: Endpoint<Response = api::Text> + Send + 'static,
        F: Fn(Arc<Daemon>, E) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<mpsc::Receiver<Bytes>, Fail>> + Send + 'static,
    {
        Route::new(move |d, e: E, _| {
            let answer = f(d, e);
            async move { Ok(streamed(answer.await?)) }
        })
    }

    /// An endpoint that upgrades the connection (`dyno run`'s attach): the handler gets the
    /// request itself.
    pub fn upgrade<E, F, Fut>(f: F) -> Route
    where
        E: Endpoint<Response = api::Upgrade> + Send + 'static,
        F: Fn(Arc<Daemon>, E, Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, Fail>> + Send + 'static,
    {
        Route::new(move |d, e: E, req: Option<Request<Incoming>>| {
            let answer = req.map(|req| f(d, e, req));
            async move {
                match answer {
                    Some(answer) => answer.await,
                    None => Err(invalid("an upgrade takes no request body")),
                }
            }
        })
    }

    fn new<E, F, Fut>(f: F) -> Route
    where
        E: Endpoint + Send + 'static,
        F: Fn(Arc<Daemon>, E, Option<Request<Incoming>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, Fail>> + Send + 'static,
    {
        let f = Arc::new(f);
        Route {
            method: E::METHOD,
            segs: E::SEGMENTS,
            handler: Box::new(move |d, params, req, over_https| {
                let f = f.clone();
                Box::pin(async move {
                    let app = match E::SEGMENTS {
                        [Seg::Lit("apps"), Seg::Param, ..] => params.first().cloned(),
                        _ => None,
                    };
                    let (e, req) = match decode_request::<E>(params, req).await {
                        Ok(decoded) => decoded,
                        // An unknown app is told before a bad body, as it always was.
                        Err(fail) => {
                            if let Some(app) = app {
                                super::api::find_app(&d, &app)?;
                            }
                            return Err(fail);
                        }
                    };
                    if let Some(what) = e.unix_only().filter(|_| over_https) {
                        return Err(Fail(
                            StatusCode::FORBIDDEN,
                            "forbidden",
                            format!(
                                "{what}: accepted only on the daemon's Unix socket (the dyno CLI on this machine), not over the HTTPS API"
                            ),
                        ));
                    }
                    f(d, e, req).await
                })
            }),
        }
    }

    /// The route's method and path pattern (`/apps/{}/formation`): tests walk the table.
    pub fn describe(&self) -> (Method, String) {
        (self.method.clone(), api::pattern(self.segs))
    }

    /// The path's parameters when this route takes `method` and `segs`.
    fn matches(&self, method: &Method, segs: &[String]) -> Option<Vec<String>> {
        if self.method != method || self.segs.len() != segs.len() {
            return None;
        }
        let mut params = vec![];
        for (pattern, seg) in self.segs.iter().zip(segs) {
            match pattern {
                Seg::Lit(l) if l == seg => {}
                Seg::Lit(_) => return None,
                Seg::Param => params.push(seg.clone()),
            }
        }
        Some(params)
    }
}

/// The endpoint's request from the path's parameters, the query and (when it takes one) the
/// body; the request itself is handed on when its body was not read.
async fn decode_request<E: Endpoint>(
    params: Vec<String>,
    req: Request<Incoming>,
) -> Result<(E, Option<Request<Incoming>>), Fail> {
    let q = query(&req);
    let bad = |e: serde_json::Error| invalid(format!("invalid request body: {e}"));
    if !E::HAS_BODY {
        return Ok((E::decode(params, &q, &[]).map_err(bad)?, Some(req)));
    }
    let bytes = req
        .into_body()
        .collect()
        .await
        .map_err(|e| invalid(format!("reading the request: {e}")))?
        .to_bytes();
    Ok((E::decode(params, &q, &bytes).map_err(bad)?, None))
}

/// Answers one request from the route table.
pub async fn handle(
    d: Arc<Daemon>,
    routes: &[Route],
    req: Request<Incoming>,
    transport: Transport,
) -> Resp {
    let over_https = matches!(transport, Transport::Https { .. });
    let range = (req.method() == Method::GET)
        .then(|| req.headers().get("range")?.to_str().ok().map(String::from))
        .flatten();
    let resp = TRANSPORT.scope(transport, dispatch(d, routes, req, over_https));
    let resp = resp.await;
    match range {
        Some(r) if resp.status() == StatusCode::OK => paginate(resp, &r).await,
        _ => resp,
    }
}

async fn dispatch(
    d: Arc<Daemon>,
    routes: &[Route],
    req: Request<Incoming>,
    over_https: bool,
) -> Resp {
    let method = req.method().clone();
    let segs: Vec<String> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(api::decode_segment)
        .collect();
    let route = routes
        .iter()
        .find_map(|r| r.matches(&method, &segs).map(|params| (r, params)));
    let result = match route {
        Some((r, params)) => (r.handler)(d, params, req, over_https).await,
        None => Err(Fail(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such endpoint: {method} /{}", segs.join("/")),
        )),
    };
    match result {
        Ok(r) => r,
        Err(fail) => error(fail),
    }
}

/// Heroku's error JSON, `{"id": "not_found", "message": "…"}`.
pub fn error(Fail(status, id, message): Fail) -> Resp {
    json(
        status,
        &ErrorBody {
            id: id.into(),
            message,
        },
    )
}

/// A `Range` header: `<field> [[]start]..[end]; max=N, order=asc|desc` (the separators after
/// `;` may be `,` or `;`). Unknown parts are ignored, as Heroku does.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    pub field: String,
    /// The first value, and whether it is excluded (`]v..`, as `Next-Range` sends it).
    pub start: Option<(String, bool)>,
    pub max: usize,
    pub desc: bool,
}

/// Heroku's page size when a `Range` gives no `max` (and its largest).
pub const MAX_PAGE: usize = 1000;

impl Range {
    pub fn parse(s: &str) -> Option<Range> {
        let (head, opts) = s.split_once(';').unwrap_or((s, ""));
        let (field, span) = head.trim().split_once(' ').unwrap_or((head.trim(), ""));
        if field.is_empty() {
            return None;
        }
        let (start, _end) = span.trim().split_once("..").unwrap_or((span.trim(), ""));
        let start = match start.trim() {
            "" => None,
            v => Some(match v.strip_prefix(']') {
                Some(v) => (v.to_string(), true),
                None => (v.to_string(), false),
            }),
        };
        let mut r = Range {
            field: field.to_string(),
            start,
            max: MAX_PAGE,
            desc: false,
        };
        for opt in opts.split([',', ';']) {
            match opt.trim().split_once('=') {
                Some(("max", n)) => r.max = n.trim().parse::<usize>().ok()?.clamp(1, MAX_PAGE),
                Some(("order", o)) => r.desc = o.trim() == "desc",
                _ => {}
            }
        }
        Some(r)
    }

    /// One page of `items` (sorted by the field, in the order asked for, after `start`), and
    /// the `Next-Range` of the rest when there is a rest.
    pub fn page(
        &self,
        mut items: Vec<serde_json::Value>,
    ) -> (Vec<serde_json::Value>, Option<String>) {
        use std::cmp::Ordering;
        let key = |v: &serde_json::Value| v.get(&self.field).cloned().unwrap_or_default();
        let cmp = |a: &serde_json::Value, b: &serde_json::Value| match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            _ => a.to_string().cmp(&b.to_string()),
        };
        items.sort_by(|a, b| {
            let o = cmp(&key(a), &key(b));
            if self.desc {
                o.reverse()
            } else {
                o
            }
        });
        if let Some((start, excluded)) = &self.start {
            let start = serde_json::from_str::<serde_json::Value>(start)
                .ok()
                .filter(|v| v.is_number())
                .unwrap_or_else(|| serde_json::Value::String(start.clone()));
            items.retain(|v| {
                let o = cmp(&key(v), &start);
                let o = if self.desc { o.reverse() } else { o };
                o == Ordering::Greater || (o == Ordering::Equal && !excluded)
            });
        }
        if items.len() <= self.max {
            return (items, None);
        }
        items.truncate(self.max);
        let last = match key(items.last().unwrap()) {
            serde_json::Value::String(s) => s,
            v => v.to_string(),
        };
        let next = format!(
            "{} ]{last}..; max={}, order={}",
            self.field,
            self.max,
            if self.desc { "desc" } else { "asc" }
        );
        (items, Some(next))
    }
}

/// Applies a `Range` to a JSON list answer: one page, 206 and `Next-Range` when more remain.
async fn paginate(resp: Resp, range: &str) -> Resp {
    let is_json = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let Some(range) = Range::parse(range).filter(|_| is_json) else {
        return resp;
    };
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = body.collect().await.map(|b| b.to_bytes());
    let items = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Array(items)) => items,
        _ => return Response::from_parts(parts, Full::new(bytes).boxed()),
    };
    let (page, next) = range.page(items);
    let mut resp = json(
        if next.is_some() {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        },
        &page,
    );
    if let Some(next) = next {
        resp.headers_mut()
            .insert("next-range", next.parse().expect("a header value"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use crate::api::{self, Endpoint};

    /// Every endpoint of `crate::api` has exactly one route, and no two routes take the same
    /// requests.
    #[test]
    fn every_endpoint_has_one_route() {
        let routes = crate::daemon::api::routes();
        let mut seen = std::collections::HashSet::new();
        for r in &routes {
            assert!(
                seen.insert((r.method.clone(), api::pattern(r.segs))),
                "two routes for {} {}",
                r.method,
                api::pattern(r.segs)
            );
        }
        macro_rules! endpoints {
            ($($e:ty),* $(,)?) => {{
                let all = [$((<$e>::METHOD, api::pattern(<$e>::SEGMENTS))),*];
                for (m, p) in &all {
                    assert!(seen.contains(&(m.clone(), p.clone())), "no route for {m} {p}");
                }
                all.len()
            }};
        }
        let n = endpoints![
            api::account::Info,
            api::account::Token,
            api::apps::List,
            api::apps::ListOfUser,
            api::apps::Create,
            api::apps::Info,
            api::apps::Update,
            api::apps::Destroy,
            api::formation::List,
            api::formation::Update,
            api::dynos::List,
            api::dynos::Info,
            api::dynos::Create,
            api::dynos::RestartAll,
            api::dynos::Restart,
            api::dynos::Stop,
            api::dynos::Kill,
            api::dynos::RestartType,
            api::dynos::StopType,
            api::dynos::Attach,
            api::releases::List,
            api::releases::Info,
            api::releases::ConfigVarsOf,
            api::releases::Output,
            api::releases::Rollback,
            api::slugs::Info,
            api::slugs::Blob,
            api::config::Get,
            api::config::Update,
            api::builds::List,
            api::builds::Create,
            api::builds::Info,
            api::builds::Output,
            api::buildpacks::List,
            api::buildpacks::Update,
            api::logs::CreateSession,
            api::logs::Stream,
            api::domains::List,
            api::domains::SniEndpoints,
            api::domains::Create,
            api::domains::Delete,
            api::drains::List,
            api::drains::Create,
            api::drains::Delete,
            api::idling::Get,
            api::idling::Update,
            api::certs::Get,
            api::daemon::Status,
            api::daemon::Settings,
            api::daemon::Gc,
            api::apps::Disk,
            api::dynos::Stats,
            api::daemon::Stop,
            api::local::GetDir,
            api::local::SetDir,
            api::addons::List,
            api::addons::Create,
            api::addons::Info,
            api::addons::InfoOf,
            api::addons::Destroy,
            api::addons::Attachments,
            api::addons::AllAttachments,
            api::addons::ListAll,
            api::addons::Attach,
            api::addons::Detach,
            api::addons::Connection,
            api::pg_backups::List,
            api::pg_backups::Capture,
            api::pg_backups::Info,
            api::pg_backups::RestoreCreate,
            api::pg_backups::Download,
            api::scheduler::List,
            api::scheduler::Create,
            api::scheduler::Destroy,
            api::scheduler::Run,
        ];
        assert_eq!(routes.len(), n, "a route whose endpoint is not listed here");
    }

    /// A path reaches its route with its parameters decoded.
    #[test]
    fn paths_find_their_route() {
        let routes = crate::daemon::api::routes();
        let e = api::dynos::Kill {
            app: "hello".into(),
            dyno: "web 1".into(),
        };
        let segs: Vec<String> = e
            .path()
            .split('/')
            .skip(1)
            .map(api::decode_segment)
            .collect();
        let hits: Vec<Vec<String>> = routes
            .iter()
            .filter_map(|r| r.matches(&hyper::Method::POST, &segs))
            .collect();
        assert_eq!(hits, vec![vec!["hello".to_string(), "web 1".to_string()]]);
        assert!(routes
            .iter()
            .all(|r| r.matches(&hyper::Method::GET, &segs).is_none()));
    }

    #[test]
    fn ranges_as_the_heroku_cli_sends_them() {
        use super::Range;
        let r = Range::parse("version ..; max=15, order=desc").unwrap();
        assert_eq!(
            (r.field.as_str(), r.max, r.desc, r.start),
            ("version", 15, true, None)
        );
        let r = Range::parse("version ..; order=desc,max=1").unwrap();
        assert_eq!((r.max, r.desc), (1, true));
        let r = Range::parse("id ..; max=1000;").unwrap();
        assert_eq!((r.field.as_str(), r.max, r.desc), ("id", 1000, false));
        let r = Range::parse("name ]myapp..; max=1").unwrap();
        assert_eq!(r.start, Some(("myapp".to_string(), true)));
        assert!(Range::parse("").is_none());
        assert!(Range::parse("version ..; max=lots").is_none());
        let items: Vec<serde_json::Value> = (1..=5)
            .map(|v| serde_json::json!({ "version": v }))
            .collect();
        let r = Range::parse("version ..; max=2, order=desc").unwrap();
        let (page, next) = r.page(items.clone());
        assert_eq!(page, items[3..].iter().rev().cloned().collect::<Vec<_>>());
        let next = next.unwrap();
        assert_eq!(next, "version ]4..; max=2, order=desc");
        let (page, _) = Range::parse(&next).unwrap().page(items.clone());
        assert_eq!(page[0]["version"], 3);
        // Numbers sort as numbers (10 after 9).
        let items: Vec<serde_json::Value> = [10, 9, 1]
            .iter()
            .map(|v| serde_json::json!({ "version": v }))
            .collect();
        let (page, next) = Range::parse("version ..").unwrap().page(items);
        assert_eq!(page[2]["version"], 10);
        assert!(next.is_none());
    }

    #[test]
    fn decodes_percent_escapes() {
        use crate::api::{decode_query, decode_segment};
        assert_eq!(decode_segment("%2Fsrc%2Fhello"), "/src/hello");
        // A plus is a space only in a query; a stray % stays.
        assert_eq!(decode_segment("a+b%"), "a+b%");
        assert_eq!(
            decode_query("dir=a+b%25&x"),
            vec![("dir".into(), "a b%".into()), ("x".into(), "".into())]
        );
    }
}

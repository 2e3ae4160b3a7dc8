//! Request and response headers both paths (hyper and `h1`) agree on: hop-by-hop headers,
//! X-Forwarded-For, X-Request-Id, and the values that go into log lines.

use hyper::header::{self, HeaderMap, HeaderName};
use hyper::Uri;
use rand::RngCore;

pub(super) fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .map(|c| if c == '"' { '\'' } else { c })
        .collect()
}

pub(super) fn log_path(uri: &Uri) -> String {
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    pq.replace('"', "%22")
}

pub(super) fn joined(h: &HeaderMap, name: HeaderName) -> Option<String> {
    let values: Vec<&str> = h
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// A client connection's peer, as its requests' headers and log lines show it.
pub(super) struct Peer {
    /// The client's address (X-Forwarded-For, `fwd=`).
    pub(super) ip: String,
}

/// X-Forwarded-For (the client's values, joined) with the client's address appended.
pub(super) fn forwarded_for(prev: Option<String>, peer: &Peer) -> String {
    let ip = peer.ip.clone();
    match prev {
        Some(prev) => {
            let mut hops: Vec<String> = prev
                .split(',')
                .map(sanitize)
                .filter(|s| !s.is_empty())
                .collect();
            hops.push(ip);
            hops.join(", ")
        }
        None => ip,
    }
}

/// The client's X-Request-Id if valid (20–200 of `[A-Za-z0-9+=/-]`), else a new one.
pub(crate) fn request_id(h: &HeaderMap) -> String {
    request_id_from(h.get("x-request-id").and_then(|v| v.to_str().ok()))
}

/// The client's id if it is valid, else a new one.
pub(crate) fn request_id_from(id: Option<&str>) -> String {
    match id {
        Some(id) if valid_request_id(id) => id.to_string(),
        _ => new_request_id(),
    }
}

pub(crate) fn valid_request_id(id: &str) -> bool {
    (20..=200).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'=' | b'/' | b'-'))
}

/// A random UUID (version 4).
pub(crate) fn new_request_id() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[(x >> 4) as usize] as char);
        s.push(HEX[(x & 15) as usize] as char);
    }
    s
}

/// Headers that end at this hop, on both paths. Not `Transfer-Encoding`: the fast path passes
/// chunked framing through verbatim, while [`strip_hop_by_hop`] (the hyper path, where hyper
/// frames bodies itself) removes it as well.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Whether header `name` ends at this hop: one of [`HOP_BY_HOP`] or named by the Connection
/// header (`tokens`, lowercased).
pub(super) fn is_hop_by_hop(name: &str, tokens: &[String]) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
        || tokens.iter().any(|t| name.eq_ignore_ascii_case(t))
}

fn connection_tokens(h: &HeaderMap) -> Vec<String> {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The tokens of the Connection headers of a raw (httparse) head, lowercased; the fast path's
/// [`connection_tokens`].
pub(super) fn raw_connection_tokens(headers: &[httparse::Header<'_>]) -> Vec<String> {
    let mut tokens = Vec::new();
    for h in headers {
        if h.name.eq_ignore_ascii_case("connection") {
            for t in h.value.split(|&b| b == b',') {
                let t = String::from_utf8_lossy(t.trim_ascii()).to_ascii_lowercase();
                if !t.is_empty() {
                    tokens.push(t);
                }
            }
        }
    }
    tokens
}

pub(super) fn is_upgrade(h: &HeaderMap) -> bool {
    h.contains_key(header::UPGRADE) && connection_tokens(h).iter().any(|t| t == "upgrade")
}

/// Removes hop-by-hop headers, including those the Connection header names.
pub(super) fn strip_hop_by_hop(h: &mut HeaderMap) {
    for t in connection_tokens(h) {
        if let Ok(name) = HeaderName::from_bytes(t.as_bytes()) {
            h.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        h.remove(name);
    }
    h.remove(header::TRANSFER_ENCODING);
}

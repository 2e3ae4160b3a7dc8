//! Heroku's router errors (H-codes) and the HTML pages served with them.

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use super::RouterBody;

/// A Heroku router error: code and description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HCode(pub(super) &'static str, pub(super) &'static str);

pub(crate) const H10: HCode = HCode("H10", "App crashed");
pub(crate) const H12: HCode = HCode("H12", "Request timeout");
pub(crate) const H13: HCode = HCode("H13", "Connection closed without response");
pub(crate) const H14: HCode = HCode("H14", "No web processes running");
pub(crate) const H15: HCode = HCode("H15", "Idle connection");
pub(crate) const H17: HCode = HCode("H17", "Poorly formatted HTTP response");
pub(crate) const H18: HCode = HCode("H18", "Server Request Interrupted");
pub(crate) const H19: HCode = HCode("H19", "Backend connection timeout");
pub(crate) const H20: HCode = HCode("H20", "App boot timeout");
pub(crate) const H27: HCode = HCode("H27", "Client Request Interrupted");
pub(crate) const H28: HCode = HCode("H28", "Client Connection Idle");
pub(crate) const H99: HCode = HCode("H99", "Platform error");

fn html_response(status: StatusCode, html: String) -> Response<RouterBody> {
    let mut resp = Response::new(RouterBody::full(html));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    resp
}

pub(super) fn not_found() -> Response<RouterBody> {
    let (status, html) = not_found_page();
    html_response(status, html)
}

/// The page for a host that names no app.
pub(super) fn not_found_page() -> (StatusCode, String) {
    (
        StatusCode::NOT_FOUND,
        page(
            "No such app",
            "There is no app configured at that hostname. Apps are served at <code>http://&lt;app&gt;.localhost</code>.",
        ),
    )
}

pub(super) fn error_page(status: StatusCode, code: HCode) -> Response<RouterBody> {
    html_response(status, error_html(code))
}

/// The page served with an H-code error.
pub(super) fn error_html(code: HCode) -> String {
    let HCode(code, desc) = code;
    page(
        "Application Error",
        &format!(
            "An error occurred in the application and your page could not be served \
             ({code}: {desc}). If you are the application owner, check your logs for details: \
             <code>dyno logs --tail</code>"
        ),
    )
}

pub(super) fn page(title: &str, text: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n\
         <style>body{{font-family:sans-serif;margin:4em auto;max-width:40em;color:#333}}</style>\n\
         </head>\n<body>\n<h1>{title}</h1>\n<p>{text}</p>\n</body>\n</html>\n"
    )
}

//! The API over HTTPS (`DYNO_API_ADDR`): every route needs the token, a wrong one changes
//! nothing, inputs naming host paths stay on the Unix socket, pagination with `Range` and
//! `Next-Range`, Heroku's error shapes. Requests go through `curl` trusting only the published
//! CA certificate, as the Heroku CLI and git do.

mod common;

use common::Env;
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

/// The daemon's HTTPS API as `dyno heroku:env` tells it.
struct Api {
    url: String,
    token: String,
    ca: String,
}

impl Api {
    fn of(env: &Env) -> Api {
        let out = env.ok(&["heroku:env"], None);
        let get = |k: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("export {k}=")))
                .unwrap_or_else(|| panic!("no {k} in {out}"))
                .trim_matches('\'')
                .to_string()
        };
        let api = Api {
            url: get("HEROKU_HOST"),
            token: get("HEROKU_API_KEY"),
            ca: get("NODE_EXTRA_CA_CERTS"),
        };
        assert_eq!(get("GIT_SSL_CAINFO"), api.ca);
        assert_eq!(get("HEROKU_PARTICLEBOARD_URL"), api.url);
        assert_eq!(get("DISABLE_TELEMETRY"), "true");
        assert!(api.url.starts_with("https://127.0.0.1:"), "{}", api.url);
        assert_eq!(env.ok(&["auth:token"], None).trim(), api.token);
        api
    }

    /// `curl` with these headers: (status, headers, JSON body or Null).
    fn req(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&Value>,
        extra: &[&str],
    ) -> (u16, String, Value) {
        let mut c = Command::new("curl");
        c.args(["-sS", "-D", "-", "--max-time", "30", "--cacert", &self.ca])
            .args(["-X", method])
            .args(["-H", "Accept: application/vnd.heroku+json; version=3"]);
        if let Some(a) = auth {
            c.args(["-H", &format!("Authorization: {a}")]);
        }
        if let Some(b) = body {
            c.args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(b.to_string());
        }
        for h in extra {
            c.args(["-H", h]);
        }
        c.arg(format!("{}{path}", self.url));
        let o = c.output().expect("curl");
        assert!(
            o.status.success(),
            "curl {method} {path}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (
            status,
            head.to_ascii_lowercase(),
            serde_json::from_str(body).unwrap_or(Value::Null),
        )
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let bearer = format!("Bearer {}", self.token);
        let (s, _, v) = self.req(method, path, Some(&bearer), body, &[]);
        (s, v)
    }
}

#[test]
fn every_https_route_needs_the_token() {
    let env = Env::new("https-auth");
    let api = Api::of(&env);
    // The token is private, the CA copy is public and holds no key.
    let mode = |p: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode(&env.home.join("api-token")), 0o600);
    assert_eq!(mode(std::path::Path::new(&api.ca)), 0o644);
    let ca = std::fs::read_to_string(&api.ca).unwrap();
    assert!(ca.contains("BEGIN CERTIFICATE") && !ca.contains("PRIVATE KEY"));

    let routes = dyno::daemon::api::routes();
    assert!(routes.len() > 40);
    let wrong_basic = "Basic aGVyb2t1Ondyb25n"; // heroku:wrong
    let wrong = [
        None,
        Some("Bearer wrong".to_string()),
        Some(format!("Bearer {}x", api.token)),
        Some(wrong_basic.to_string()),
        Some(format!("Token {}", api.token)),
    ];
    for r in &routes {
        let (method, pattern) = r.describe();
        let path = pattern.replace("{}", "x");
        for (i, auth) in wrong.iter().enumerate() {
            // Every route without a token; a sample of them with each wrong one.
            if i > 0 && path.len() % 3 != i % 3 {
                continue;
            }
            let body = (method != "GET").then(|| json!({"name": "intruder"}));
            let (status, head, v) =
                api.req(method.as_str(), &path, auth.as_deref(), body.as_ref(), &[]);
            assert_eq!(status, 401, "{method} {path} with {auth:?}: {v}");
            assert_eq!(v["id"], "unauthorized", "{method} {path}: {v}");
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert!(head.contains("www-authenticate: basic"), "{head}");
        }
    }
    // Git and unknown paths too.
    for path in ["/x.git/info/refs?service=git-receive-pack", "/nothing/here"] {
        assert_eq!(api.req("GET", path, None, None, &[]).0, 401, "{path}");
    }
    // A log stream's URL is its own secret: a guessed one finds nothing.
    assert_eq!(
        api.req("GET", "/log-streams/0123456789abcdef", None, None, &[])
            .0,
        404
    );
    // Nothing was made by any of it; the right token works, Bearer and Basic.
    assert_eq!(env.json(&["apps", "--json"]), json!([]));
    let (s, v) = api.call("POST", "/apps", Some(&json!({"name": "real-app"})));
    assert_eq!(s, 201, "{v}");
    let basic = format!(
        "Basic {}",
        base64(format!("heroku:{}", api.token).as_bytes())
    );
    let (s, _, v) = api.req("GET", "/apps/real-app", Some(&basic), None, &[]);
    assert_eq!((s, v["name"].as_str()), (200, Some("real-app")));
    // The token never reaches the daemon's log.
    let log = std::fs::read_to_string(env.home.join("daemon.log")).unwrap_or_default();
    assert!(!log.contains(&api.token), "the token is in daemon.log");
    // The public CA copy goes with the daemon; the token stays for the next one.
    env.ok(&["daemon:stop"], None);
    assert!(!std::path::Path::new(&api.ca).exists());
    assert_eq!(env.ok(&["auth:token"], None).trim(), api.token);
    assert!(std::path::Path::new(&api.ca).exists());
}

#[test]
fn host_path_inputs_stay_on_the_unix_socket() {
    let env = Env::new("https-hostpaths");
    let api = Api::of(&env);
    assert_eq!(
        api.call("POST", "/apps", Some(&json!({"name": "paths"}))).0,
        201
    );
    let refused: Vec<(&str, &str, Option<Value>)> = vec![
        (
            "POST",
            "/apps/paths/builds",
            Some(json!({"source_dir": "/etc"})),
        ),
        (
            "POST",
            "/apps/paths/builds",
            Some(json!({"git": {"commit": "0".repeat(40), "quarantine": "/root"}})),
        ),
        (
            "PUT",
            "/apps/paths/buildpack-installations",
            Some(json!({"updates": [{"buildpack": "/srv/bp"}]})),
        ),
        (
            "PUT",
            "/apps/paths/buildpack-installations",
            Some(
                json!({"updates": [{"buildpack": "python"}, {"buildpack": "file:///srv/bp.git"}]}),
            ),
        ),
        (
            "PUT",
            "/apps/paths/buildpack-installations",
            Some(json!({"updates": [{"buildpack": "../bp"}]})),
        ),
        (
            "PATCH",
            "/apps/paths/config-vars",
            Some(json!({"BUILDPACK_URL": "/srv/bp"})),
        ),
        ("GET", "/local/dirs?dir=%2Fetc", None),
        (
            "PUT",
            "/local/dirs",
            Some(json!({"dir": "/etc", "app": "paths"})),
        ),
        ("POST", "/daemon/stop", Some(json!({"keep_dynos": false}))),
        ("GET", "/account/token", None),
    ];
    for (method, path, body) in &refused {
        let (s, v) = api.call(method, path, body.as_ref());
        assert_eq!(s, 403, "{method} {path}: {v}");
        assert_eq!(v["id"], "forbidden");
        assert!(
            v["message"].as_str().unwrap().contains("Unix socket"),
            "{v}"
        );
    }
    // Nothing changed: no build, no buildpack, no config var, the daemon still answers.
    assert_eq!(api.call("GET", "/apps/paths/builds", None).1, json!([]));
    assert_eq!(
        api.call("GET", "/apps/paths/buildpack-installations", None)
            .1,
        json!([])
    );
    assert_eq!(
        api.call("GET", "/apps/paths/config-vars", None).1,
        json!({})
    );
    assert!(env.daemon_pid().is_some());
    // The same inputs that name no host path are served.
    let (s, v) = api.call(
        "PUT",
        "/apps/paths/buildpack-installations",
        Some(&json!({"updates": [{"buildpack": "heroku/python"}]})),
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = api.call(
        "PATCH",
        "/apps/paths/config-vars",
        Some(&json!({"BUILDPACK_URL": "https://github.com/heroku/heroku-buildpack-python"})),
    );
    assert_eq!(s, 200, "{v}");
    // The CLI on the socket may still name host paths.
    env.ok(&["buildpacks:set", "/srv/somewhere", "-a", "paths"], None);
}

#[test]
fn pagination_and_error_shapes() {
    let env = Env::new("https-pages");
    let api = Api::of(&env);
    assert_eq!(
        api.call("POST", "/apps", Some(&json!({"name": "pages"}))).0,
        201
    );
    for i in 1..=5 {
        let (s, v) = api.call(
            "PATCH",
            "/apps/pages/config-vars",
            Some(&json!({ "N": i.to_string() })),
        );
        assert_eq!(s, 200, "{v}");
    }
    let bearer = format!("Bearer {}", api.token);
    let page = |range: &str| {
        let (s, head, v) = api.req(
            "GET",
            "/apps/pages/releases",
            Some(&bearer),
            None,
            &[&format!("Range: {range}")],
        );
        let versions: Vec<u64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["version"].as_u64().unwrap())
            .collect();
        let next = head
            .lines()
            .find_map(|l| l.strip_prefix("next-range: "))
            .map(|s| s.trim().to_string());
        (s, versions, next)
    };
    // What `heroku config:set` asks for: the latest release first.
    assert_eq!(page("version ..; order=desc,max=1").1, vec![5]);
    // Pages of two, newest first, following Next-Range to the end.
    let (s, v, next) = page("version ..; max=2, order=desc");
    assert_eq!((s, v), (206, vec![5, 4]));
    let (s, v, next) = page(&next.expect("a Next-Range"));
    assert_eq!((s, v), (206, vec![3, 2]));
    let (s, v, next) = page(&next.expect("a Next-Range"));
    assert_eq!((s, v, next), (200, vec![1], None));
    // Ascending with no max: everything, 200.
    assert_eq!(page("version ..").1, vec![1, 2, 3, 4, 5]);
    // Domains as the CLI asks: all of them with 200 (a 206 there loops forever).
    let (s, _, _) = api.req(
        "GET",
        "/apps/pages/domains",
        Some(&bearer),
        None,
        &["Range: id ..; max=1000;"],
    );
    assert_eq!(s, 200);

    // Heroku's error shapes.
    let (s, v) = api.call("GET", "/apps/nope", None);
    assert_eq!(
        (s, v),
        (
            404,
            json!({"id": "not_found", "message": "Couldn't find that app."})
        )
    );
    let (s, v) = api.call("GET", "/apps/pages/pipeline-couplings", None);
    assert_eq!((s, v["id"].as_str()), (404, Some("not_found")));
    let (s, v) = api.call("POST", "/apps", Some(&json!({"name": "Bad Name"})));
    assert_eq!((s, v["id"].as_str()), (422, Some("invalid_params")), "{v}");
    let (s, v) = api.call(
        "PATCH",
        "/apps/pages/formation",
        Some(&json!({"updates": [{"type": "web", "quantity": "lots"}]})),
    );
    assert_eq!(s, 422, "{v}");
    assert!(v["message"].as_str().unwrap().contains("quantity"), "{v}");
    let (s, v) = api.call("GET", "/account", None);
    assert_eq!((s, v["email"].as_str()), (200, Some("user@localhost")));
    assert!(v.get("scheduled_deletion_time").is_none());
    let (s, v) = api.call("GET", "/users/~/apps", None);
    assert_eq!((s, v[0]["name"].as_str()), (200, Some("pages")));
    let (_, v) = api.call("GET", "/apps/pages", None);
    assert_eq!(v["build_stack"]["name"], v["stack"]["name"]);
    assert_eq!(v["generation"]["name"], "cedar");
    assert_eq!(v["git_url"], format!("{}/pages.git", api.url));
}

fn base64(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn log_sessions_are_server_sent_events_at_a_secret_url() {
    // Read by the daemon this test's first command starts.
    std::env::set_var("DYNO_LOG_KEEPALIVE", "0.5");
    let env = Env::new("https-sse");
    let api = Api::of(&env);
    assert_eq!(
        api.call("POST", "/apps", Some(&json!({"name": "sse"}))).0,
        201
    );
    for i in 1..=3 {
        let body = json!({ "K": i.to_string() });
        assert_eq!(
            api.call("PATCH", "/apps/sse/config-vars", Some(&body)).0,
            200
        );
    }
    let session = |tail: bool| {
        let (s, v) = api.call(
            "POST",
            "/apps/sse/log-sessions",
            Some(&json!({"lines": 2, "tail": tail})),
        );
        assert_eq!(s, 201, "{v}");
        let url = v["logplex_url"].as_str().unwrap().to_string();
        assert!(
            url.starts_with(&format!("{}/log-streams/", api.url)),
            "{url}"
        );
        url
    };
    // As EventSource reads it: no Authorization header.
    let ca = api.ca.clone();
    let get = move |url: &str, extra: &[&str], max: &str| {
        let mut c = Command::new("curl");
        c.args(["-sS", "-N", "-D", "-", "--max-time", max, "--cacert", &ca])
            .args(["-H", "Accept: text/event-stream"]);
        for h in extra {
            c.args(["-H", h]);
        }
        let o = c.arg(url).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let url = session(false);
    let out = get(&url, &[], "20");
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{head}"
    );
    assert!(body.starts_with("retry: 10\n\n"), "{body}");
    // The last two lines, one event each, numbered.
    assert!(
        body.contains("id: 1\ndata: ") && body.contains("id: 2\ndata: "),
        "{body}"
    );
    assert!(!body.contains("id: 3\n"), "{body}");
    assert!(body.contains("Set K config vars"), "{body}");
    let body = body.to_string();
    // The URL stays valid; a reconnect (Last-Event-ID) gets no history again.
    let second = get(&url, &[], "20");
    assert_eq!(second.split_once("\r\n\r\n").unwrap().1, body);
    let again = get(&url, &["Last-Event-ID: 2"], "20");
    let body = again.split_once("\r\n\r\n").unwrap().1;
    assert_eq!(body, "retry: 10\n\n", "{again}");
    // A quiet tail gets keep-alive comments, and live lines as they come.
    let url = session(true);
    let reader = std::thread::spawn({
        let get = get.clone();
        move || get(&url, &[], "10")
    });
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(
        api.call(
            "PATCH",
            "/apps/sse/config-vars",
            Some(&json!({"LIVE": "1"}))
        )
        .0,
        200
    );
    let out = reader.join().unwrap();
    assert!(out.matches(": keep-alive\n\n").count() >= 2, "{out}");
    assert!(out.contains("Set LIVE config vars"), "{out}");
    // Unknown secrets find nothing.
    let (s, _, _) = api.req("GET", "/log-streams/nope", None, None, &[]);
    assert_eq!(s, 404);
}

#[test]
fn a_non_loopback_api_address_warns() {
    let env = Env::new("https-exposed");
    let o = env
        .cmd(&["apps"], None)
        .env("DYNO_API_ADDR", "0.0.0.0:0")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let api = Api::of(&env);
    // Clients still get a loopback URL (the Heroku CLI sends its token to no other host).
    assert!(api.url.starts_with("https://127.0.0.1:"), "{}", api.url);
    assert_eq!(api.call("GET", "/account", None).0, 200);
    let log = std::fs::read_to_string(env.home.join("daemon.log")).unwrap();
    assert!(
        log.contains("reachable from other machines"),
        "no warning in the daemon's log: {log}"
    );
}

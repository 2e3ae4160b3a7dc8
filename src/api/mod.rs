//! The daemon's HTTP API, by topic, shared by the CLI and the daemon.
//!
//! Each topic module (`account`, `apps`, `addons`, `formation`, `dynos`, `releases`, `config`, `builds`,
//! `buildpacks`, `logs`, `slugs`, `domains`, `drains`, `idling`, `certs`, `daemon`, `local`) holds its
//! resources' request and response types (Heroku's Platform API v3 shapes, see
//! shared/notes/heroku-behaviour.md), one [`Endpoint`] per endpoint (method, path and response
//! type together), and the rules both sides of the socket check (config var names, one-off
//! process types, scale bounds, app names). The CLI sends an endpoint with `Client::call`; the
//! daemon's route table (`daemon::api`) is built from the same endpoints, so a route cannot
//! exist without its typed endpoint. Nothing here touches state.

use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};

pub mod account;
pub mod addons;
pub mod apps;
pub mod buildpacks;
pub mod builds;
pub mod certs;
pub mod config;
pub mod daemon;
pub mod domains;
pub mod drains;
pub mod dynos;
pub mod formation;
pub mod idling;
pub mod local;
pub mod logs;
pub mod pg_backups;
pub mod releases;
pub mod scheduler;
pub mod slugs;

pub use account::{Account, ApiToken};
pub use addons::{Addon, AddonAttachment, AddonConnection, AddonCreate};
pub use apps::{App, AppCreate, AppDisk, AppUpdate};
pub use buildpacks::{
    BuildpackInstallation, BuildpackInstallationsUpdate, BuildpackRef, BuildpackUpdate,
};
pub use builds::{Build, BuildCreate, GitSource, SourceBlob};
pub use certs::Certs;
pub use config::{ConfigVars, ConfigVarsUpdate};
pub use daemon::{DaemonStatus, DaemonStop, DaemonStopping, GcItem, GcReport, GcRequest};
pub use domains::{Domain, DomainCreate};
pub use drains::{LogDrain, LogDrainCreate};
pub use dynos::{Dyno, DynoCreate, DynoStat};
pub use formation::{Formation, FormationBatchUpdate, FormationUpdate};
pub use idling::AppIdling;
pub use local::DirApp;
pub use logs::{LogSession, LogSessionCreate};
pub use releases::{Release, ReleaseCreate, ReleaseRef, SlugRef};
pub use slugs::{Slug, SlugBlob};

/// Sent by both sides on every request/response so a mismatch is noticed.
pub const VERSION_HEADER: &str = "x-dyno-version";
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+", env!("DYNO_BUILD_ID"));

/// `{"id": "not_found", "message": "Couldn't find that app."}`, as Heroku answers errors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub id: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdName {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Owner {
    pub email: String,
    pub id: String,
}

/// The answer of an action that has nothing to say: `{}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Empty {}

/// The answer is a stream of text (build output, a log tail), not JSON: its endpoint is
/// followed with `Client::stream` on the URL a resource hands out (`output_stream_url`,
/// `logplex_url`).
#[derive(Debug, Clone)]
pub struct Text;

/// The answer is `101 Switching Protocols` to the attach protocol (`crate::attach`).
#[derive(Debug, Clone)]
pub struct Upgrade;

/// One segment of an endpoint's path pattern: a literal, or a parameter taken from the
/// request's fields (percent-encoded on the way out, decoded on the way in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg {
    Lit(&'static str),
    Param,
}

/// One endpoint of the API: its method, its path (built from the request's own fields), its
/// body, and the type of its answer. `decode` is the daemon's side: the request back from the
/// path's parameters (in order), the query and the body.
pub trait Endpoint: Sized {
    type Response;
    const METHOD: Method;
    /// The path pattern: `["apps", {app}, "formation"]`.
    const SEGMENTS: &'static [Seg];
    /// The status of a successful answer.
    const STATUS: StatusCode = StatusCode::OK;
    /// Whether the request carries a JSON body.
    const HAS_BODY: bool = false;
    fn path(&self) -> String;
    fn body(&self) -> serde_json::Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn decode(
        params: Vec<String>,
        query: &[(String, String)],
        body: &[u8],
    ) -> serde_json::Result<Self>;
    /// What of this request names a path on the daemon's host (a build's `source_dir`, a
    /// directory buildpack, …), if anything: such requests are served on the Unix socket only,
    /// since over TCP anyone holding the token could make the root daemon read any directory.
    fn unix_only(&self) -> Option<&'static str> {
        None
    }
}

/// The pattern of an endpoint as text, `/apps/{}/formation` (error messages, tests).
pub fn pattern(segs: &[Seg]) -> String {
    segs.iter()
        .map(|s| match s {
            Seg::Lit(l) => format!("/{l}"),
            Seg::Param => "/{}".to_string(),
        })
        .collect()
}

/// What stays as it is in a path segment or query value: RFC 3986's unreserved characters.
const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a path segment or query value.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, RESERVED).to_string()
}

/// A path segment as the daemon sees it (`+` stays a plus in a path).
pub fn decode_segment(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A query string's pairs (`application/x-www-form-urlencoded`: `+` is a space).
pub fn decode_query(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// A JSON body, `{}` when the request sent none.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    serde_json::from_slice(if body.is_empty() { b"{}" } else { body })
}

#[doc(hidden)]
pub const fn has_body<T>() -> bool {
    true
}

/// Declares endpoints: a struct holding the path's parameters (and `body`), and its
/// [`Endpoint`] impl. `Name { app } + body: T => PATCH ["apps", app, "x"] -> R, CREATED;`
macro_rules! endpoint {
    (@seg $l:literal) => { $crate::api::Seg::Lit($l) };
    (@seg $f:ident) => { $crate::api::Seg::Param };
    (@path $p:ident $this:ident $l:literal) => { $p.push('/'); $p.push_str($l); };
    (@path $p:ident $this:ident $f:ident) => { $p.push('/'); $p.push_str(&$crate::api::enc(&$this.$f)); };
    (@bind $params:ident $l:literal) => {};
    (@bind $params:ident $f:ident) => { let $f = $params.next().unwrap_or_default(); };
    ($(
        $(#[$doc:meta])*
        $name:ident { $($field:ident),* } $(+ body: $body:ty)?
            => $method:ident [$($seg:tt),+] -> $resp:ty $(, $status:ident)?
            $(where unix_only = $unix_only:path)?;
    )*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            $(pub $field: String,)*
            $(pub body: $body,)?
        }

        impl $crate::api::Endpoint for $name {
            type Response = $resp;
            const METHOD: hyper::Method = hyper::Method::$method;
            const SEGMENTS: &'static [$crate::api::Seg] = &[$(endpoint!(@seg $seg)),+];
            $(const STATUS: hyper::StatusCode = hyper::StatusCode::$status;)?
            $(const HAS_BODY: bool = $crate::api::has_body::<$body>();)?

            #[allow(unused_variables)]
            fn path(&self) -> String {
                let this = self;
                let mut p = String::new();
                $(endpoint!(@path p this $seg);)+
                p
            }

            $(fn body(&self) -> serde_json::Result<Option<Vec<u8>>> {
                serde_json::to_vec::<$body>(&self.body).map(Some)
            })?

            #[allow(unused_variables, unused_mut)]
            fn decode(
                params: Vec<String>,
                query: &[(String, String)],
                body: &[u8],
            ) -> serde_json::Result<Self> {
                let mut params = params.into_iter();
                $(endpoint!(@bind params $seg);)+
                Ok(Self {
                    $($field,)*
                    $(body: $crate::api::json_body::<$body>(body)?,)?
                })
            }

            $(fn unix_only(&self) -> Option<&'static str> {
                $unix_only(self)
            })?
        }
    )*};
}
pub(crate) use endpoint;

#[cfg(test)]
mod tests {
    use super::*;

    /// What the daemon sees of an endpoint's path: decoded segments and query pairs.
    fn split(path: &str) -> (Vec<String>, Vec<(String, String)>) {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let segs = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(decode_segment)
            .collect();
        (segs, decode_query(query))
    }

    /// The endpoint's path matches its own pattern, and decodes back to the same request.
    fn round_trip<E: Endpoint + std::fmt::Debug>(e: E) -> E {
        let path = e.path();
        let (segs, query) = split(&path);
        assert_eq!(segs.len(), E::SEGMENTS.len(), "{path}");
        let mut params = vec![];
        for (p, s) in E::SEGMENTS.iter().zip(&segs) {
            match p {
                Seg::Lit(l) => assert_eq!(l, s, "{path}"),
                Seg::Param => params.push(s.clone()),
            }
        }
        let body = e.body().unwrap();
        assert_eq!(body.is_some(), E::HAS_BODY);
        let back = E::decode(params, &query, body.as_deref().unwrap_or(&[])).unwrap();
        assert_eq!(format!("{back:?}"), format!("{e:?}"));
        back
    }

    #[test]
    fn paths_are_built_from_the_request_and_decode_back() {
        let app = || "my app/ü".to_string();
        assert_eq!(
            dynos::Stop {
                app: "hello".into(),
                dyno: "web.1".into()
            }
            .path(),
            "/apps/hello/dynos/web.1/actions/stop"
        );
        assert_eq!(
            domains::Delete {
                app: "hello".into(),
                domain: "a b".into()
            }
            .path(),
            "/apps/hello/domains/a%20b"
        );
        round_trip(apps::List {});
        round_trip(apps::Info { app: app() });
        round_trip(apps::Update {
            app: app(),
            body: AppUpdate {
                name: Some("new".into()),
            },
        });
        round_trip(releases::ConfigVarsOf {
            app: app(),
            release: "v3".into(),
        });
        round_trip(drains::Delete {
            app: app(),
            drain: "syslog+tls://h:1/?x=y&z".into(),
        });
        round_trip(config::Update {
            app: app(),
            body: [("A".to_string(), None)].into_iter().collect(),
        });
        round_trip(addons::Destroy {
            app: app(),
            addon: "postgresql-round-12345".into(),
            body: addons::AddonDelete { force: true },
        });
        round_trip(addons::Attach {
            body: addons::AttachmentCreate {
                app: app(),
                addon: "redis-x-1".into(),
                name: Some("ANALYTICS".into()),
            },
        });
        round_trip(daemon::Stop {
            body: DaemonStop { keep_dynos: true },
        });
        round_trip(local::GetDir {
            dir: "/src/my app&co".into(),
        });
        let s = round_trip(logs::Stream {
            app: app(),
            lines: 5,
            tail: true,
            dyno: Some("web.1".into()),
            source: None,
        });
        assert!(s.tail);
    }

    /// Answers that were `json!` objects before they had types keep their bytes.
    #[test]
    fn typed_answers_keep_the_wire() {
        fn pretty<T: Serialize>(v: &T) -> String {
            serde_json::to_string_pretty(v).unwrap()
        }
        assert_eq!(pretty(&Empty {}), pretty(&serde_json::json!({})));
        assert_eq!(
            pretty(&DaemonStopping {
                keep_dynos: true,
                stopping: true
            }),
            pretty(&serde_json::json!({"stopping": true, "keep_dynos": true}))
        );
        let rollback = ReleaseCreate {
            release: "v1".into(),
        };
        assert_eq!(
            serde_json::to_vec(&rollback).unwrap(),
            serde_json::to_vec(&serde_json::json!({ "release": "v1" })).unwrap()
        );
    }

    #[test]
    fn an_empty_body_is_an_empty_object() {
        let e = daemon::Stop::decode(vec![], &[], b"");
        assert!(e.is_err(), "keep_dynos is required");
        let e = apps::Create::decode(vec![], &[], b"").unwrap();
        assert!(e.body.name.is_none());
    }

    #[test]
    fn quantities_as_numbers_strings_and_changes() {
        let q = |s: &str| serde_json::from_str::<formation::Quantity>(s);
        assert_eq!(q("2").unwrap(), 2.into());
        assert_eq!(q("\"2\"").unwrap(), 2.into());
        let plus = q("\"+1\"").unwrap();
        assert!(plus.relative && plus.n == 1);
        let minus = q("\"-2\"").unwrap();
        assert!(minus.relative && minus.n == -2);
        for bad in ["\"lots\"", "\"\"", "\"+\"", "\"1.5\"", "true"] {
            assert!(q(bad).is_err(), "{bad}");
        }
        assert_eq!(serde_json::to_string(&plus).unwrap(), "\"+1\"");
        assert_eq!(
            serde_json::to_string(&formation::Quantity::from(3)).unwrap(),
            "3"
        );
    }

    #[test]
    fn an_addon_plan_as_text_or_as_the_heroku_cli_sends_it() {
        let a: AddonCreate = serde_json::from_str(r#"{"plan": "heroku-redis"}"#).unwrap();
        assert_eq!(a.plan, "heroku-redis");
        let a: AddonCreate = serde_json::from_str(
            r#"{"attachment": {}, "plan": {"name": "heroku-postgresql:essential-0"}}"#,
        )
        .unwrap();
        assert_eq!(a.plan, "heroku-postgresql:essential-0");
        assert!(serde_json::from_str::<AddonCreate>(r#"{"plan": 3}"#).is_err());
    }

    #[test]
    fn host_paths_of_requests() {
        let bp = |b: &str| buildpacks::Update {
            app: "a".into(),
            body: BuildpackInstallationsUpdate {
                updates: vec![BuildpackUpdate {
                    buildpack: b.into(),
                }],
            },
        };
        for b in [
            "/srv/bp",
            "./bp",
            "../bp",
            "file:///srv/bp.git",
            "FILE:///x",
        ] {
            assert!(bp(b).unix_only().is_some(), "{b}");
        }
        for b in [
            "python",
            "heroku/nodejs",
            "https://github.com/x/y",
            "git@h:x/y.git",
        ] {
            assert!(bp(b).unix_only().is_none(), "{b}");
        }
        let build = |dir: &str, q: Option<&str>| builds::Create {
            app: "a".into(),
            body: BuildCreate {
                source_dir: dir.into(),
                git: Some(GitSource {
                    commit: "0".repeat(40),
                    quarantine: q.map(String::from),
                    over_https: false,
                }),
            },
        };
        assert!(build("/etc", None).unix_only().is_some());
        assert!(build("", Some("/x")).unix_only().is_some());
        assert!(build("", None).unix_only().is_none());
        assert!(daemon::Stop {
            body: DaemonStop { keep_dynos: false }
        }
        .unix_only()
        .is_some());
        assert!(apps::List {}.unix_only().is_none());
    }

    #[test]
    fn shared_rules() {
        assert!(apps::validate_name("hello-1").is_ok());
        assert!(apps::validate_name("1hello").is_err());
        assert!(dynos::is_one_off_type("run") && dynos::is_one_off_type("release"));
        assert!(!dynos::is_one_off_type("web"));
        assert_eq!(formation::check_quantity("web", 3), Ok(3));
        assert!(formation::check_quantity("web", -1)
            .unwrap_err()
            .contains("0 or more"));
        assert!(formation::check_quantity("web", formation::MAX_QUANTITY + 1).is_err());
        assert!(config::validate_key("A_1").is_ok());
        assert!(config::validate_key("1A").is_err());
        let big = |n: usize| config::ConfigVars::from([("K".to_string(), "x".repeat(n))]);
        assert!(config::check_total(&big(config::MAX_TOTAL_BYTES - 1)).is_ok());
        let err = config::check_total(&big(config::MAX_TOTAL_BYTES)).unwrap_err();
        assert!(
            err.contains("32 kB") && err.contains("nothing was changed"),
            "{err}"
        );
    }
}

//! The daemon's settings: one table of every `DYNO_*` setting, one parser. A value comes from the
//! environment (`DYNO_BOOT_TIMEOUT=60`), else from the settings file (`DYNO_HOME/config.toml`,
//! or the file `DYNO_CONFIG` names: `boot_timeout = 60`), else its default. A bad value, or an
//! unknown key in the file, stops the daemon at start with an error naming the setting and where
//! the value came from: nothing falls back silently.
//!
//! `DYNO_HOME` and `DYNO_CONFIG` locate the file, so they are read from the environment only;
//! `DYNO_ALLOW_EMPTY_DB` is a one-time act, so it is refused in the file.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One setting: its key (the file's name for it; `DYNO_` + upper case in the environment), its
/// default as it would be written, and what it means.
pub struct Def {
    pub key: &'static str,
    pub default: &'static str,
    pub help: &'static str,
    /// Whether the settings file may set it.
    pub in_file: bool,
}

const fn def(key: &'static str, default: &'static str, help: &'static str) -> Def {
    Def {
        key,
        default,
        help,
        in_file: true,
    }
}

/// Every setting there is (`dyno daemon:settings` lists them in this order).
pub const DEFS: &[Def] = &[
    def(
        "router_addr",
        "127.0.0.1:5000",
        "the router's HTTP address; port 0 picks a free one",
    ),
    def(
        "https_addr",
        "127.0.0.1:5443",
        "the router's HTTPS address; `off` for none",
    ),
    def(
        "boot_timeout",
        "60",
        "seconds a web dyno has to bind $PORT (R10)",
    ),
    def("stop_timeout", "30", "seconds between SIGTERM and SIGKILL"),
    def(
        "crash_cooloff",
        "0,20,40,60,180,320",
        "seconds before the 1st, 2nd, … restart after a crash; the last repeats",
    ),
    def(
        "crash_reset",
        "60",
        "seconds up after which a dyno's crash count is forgotten",
    ),
    def(
        "memory_quota",
        "512",
        "MB per dyno: R14 above it, R15 (killed) at twice it",
    ),
    def(
        "disk_limit",
        "2048",
        "MB of each dyno's writable layer; 0 for no limit",
    ),
    def(
        "memory_interval",
        "20",
        "seconds between memory checks of a dyno",
    ),
    def(
        "cycle",
        "86400",
        "seconds between daily restarts (plus up to 15 %); 0 for none",
    ),
    def(
        "idle_after",
        "1800",
        "seconds without requests before an app with idling on sleeps",
    ),
    def(
        "compile_timeout",
        "900",
        "seconds a buildpack's bin/compile may take",
    ),
    def(
        "keep_releases",
        "10",
        "the last releases of each app whose slugs are kept (gc)",
    ),
    def(
        "build_cache_limit",
        "2048",
        "MB an app's build cache may hold before gc empties it; 0 for no limit",
    ),
    def(
        "buildpacks",
        "",
        "the shipped buildpacks' directory; empty: found next to the binary",
    ),
    def(
        "network",
        crate::runtime::net::DEFAULT_NETWORK,
        "the dynos' IPv4 network (a /24 per DYNO_HOME), or `host`",
    ),
    def(
        "router_request_timeout",
        "30",
        "seconds to the first response byte (H12)",
    ),
    def(
        "router_idle_timeout",
        "55",
        "seconds without bytes in a response (H15)",
    ),
    def(
        "router_boot_timeout",
        "75",
        "seconds a request waits for a booting dyno (H20)",
    ),
    def(
        "router_client_idle_timeout",
        "55",
        "seconds a client's connection may idle (H28)",
    ),
    def(
        "router_header_timeout",
        "30",
        "seconds a client has to send a request head",
    ),
    def(
        "router_max_client_connections",
        "1000",
        "open connections per client address and listener",
    ),
    def(
        "router_max_client_pending",
        "128",
        "connections per client address still without a request head",
    ),
    def(
        "log",
        "info",
        "the daemon's log filter (tracing's EnvFilter syntax)",
    ),
    Def {
        key: "allow_empty_db",
        default: "false",
        help: "start once without dyno.db although dynos or slugs remain (environment only)",
        in_file: false,
    },
];

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Default,
    File,
    Env,
}

/// One setting as the daemon resolved it (`GET /daemon/settings`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resolved {
    pub key: String,
    /// The environment variable's name.
    pub env: String,
    pub value: String,
    pub origin: Origin,
    /// The settings file, when the value came from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub help: String,
}

pub fn env_name(key: &str) -> String {
    format!("DYNO_{}", key.to_ascii_uppercase())
}

/// The settings file: `DYNO_CONFIG`, else `DYNO_HOME/config.toml`.
pub fn file_path(home: &Path) -> PathBuf {
    std::env::var_os("DYNO_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join("config.toml"))
}

/// Every setting's raw value and origin, before parsing.
pub struct Raw {
    values: BTreeMap<&'static str, (String, Origin)>,
    file: PathBuf,
}

impl Raw {
    /// From the process environment and the settings file of `home`.
    pub fn load(home: &Path) -> Result<Raw> {
        let file = file_path(home);
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if std::env::var_os("DYNO_CONFIG").is_some() {
                    bail!("DYNO_CONFIG names {}, which does not exist", file.display());
                }
                None
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
        };
        let env: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Raw::from_parts(file, text.as_deref(), &env)
    }

    /// From a file's text (if any) and environment pairs: what `load` reads, testable.
    pub fn from_parts(file: PathBuf, text: Option<&str>, env: &[(String, String)]) -> Result<Raw> {
        let mut values = BTreeMap::new();
        for d in DEFS {
            values.insert(d.key, (d.default.to_string(), Origin::Default));
        }
        if let Some(text) = text {
            // One line (toml's own message draws the source over several).
            let table: toml::Table = toml::from_str(text).map_err(|e| {
                let line = e
                    .span()
                    .map_or(1, |s| text[..s.start].lines().count().max(1));
                anyhow!(
                    "{} is not valid TOML (line {line}): {}",
                    file.display(),
                    e.message().trim()
                )
            })?;
            for (k, v) in table {
                let Some(d) = DEFS.iter().find(|d| d.key == k) else {
                    let known: Vec<&str> =
                        DEFS.iter().filter(|d| d.in_file).map(|d| d.key).collect();
                    bail!(
                        "{}: unknown setting `{k}` (settings are: {})",
                        file.display(),
                        known.join(", ")
                    );
                };
                if !d.in_file {
                    bail!(
                        "{}: `{k}` can only be set in the environment ({}), for one start",
                        file.display(),
                        env_name(&k)
                    );
                }
                let s = match v {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    toml::Value::Array(a) if k == "crash_cooloff" => a
                        .iter()
                        .map(|x| match x {
                            toml::Value::Integer(i) => Ok(i.to_string()),
                            toml::Value::Float(f) => Ok(f.to_string()),
                            _ => Err(anyhow!(
                                "{}: `crash_cooloff` takes numbers of seconds",
                                file.display()
                            )),
                        })
                        .collect::<Result<Vec<_>>>()?
                        .join(","),
                    other => bail!(
                        "{}: `{k}` = {other}: expected a string or a number",
                        file.display()
                    ),
                };
                values.insert(d.key, (s, Origin::File));
            }
        }
        for d in DEFS {
            if let Some((_, v)) = env.iter().find(|(k, _)| *k == env_name(d.key)) {
                values.insert(d.key, (v.clone(), Origin::Env));
            }
        }
        Ok(Raw { values, file })
    }

    fn get(&self, key: &str) -> (&str, &Origin) {
        let (v, o) = self.values.get(key).expect("every key has a default");
        (v, o)
    }

    /// An error naming the setting, its value and where it came from.
    fn bad(&self, key: &str, expected: &str) -> anyhow::Error {
        let (v, o) = self.get(key);
        match o {
            Origin::Env => anyhow!("{}={v:?}: expected {expected}", env_name(key)),
            Origin::File => anyhow!(
                "{key} = {v:?} in {}: expected {expected}",
                self.file.display()
            ),
            Origin::Default => anyhow!("the default of {key} ({v:?}) is not {expected}"),
        }
    }

    /// Seconds, fractions allowed; `min` is the least accepted.
    fn secs(&self, key: &str, min: f64) -> Result<Duration> {
        let v = self.get(key).0.trim();
        v.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= min && *s < 1e9)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| self.bad(key, &format!("a number of seconds of at least {min}")))
    }

    fn whole(&self, key: &str, min: u64) -> Result<u64> {
        let v = self.get(key).0.trim();
        v.parse::<u64>()
            .ok()
            .filter(|n| *n >= min)
            .ok_or_else(|| self.bad(key, &format!("a whole number of at least {min}")))
    }

    fn boolean(&self, key: &str) -> Result<bool> {
        match self.get(key).0.trim() {
            "1" | "true" | "yes" => Ok(true),
            "" | "0" | "false" | "no" => Ok(false),
            _ => Err(self.bad(key, "true or false")),
        }
    }

    /// `host:port` (a name or an address, and a port number).
    fn addr(&self, key: &str) -> Result<String> {
        let v = self.get(key).0.trim();
        match v.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => Ok(v.to_string()),
            _ => Err(self.bad(key, "an address with a port, e.g. 127.0.0.1:5000")),
        }
    }

    /// What `dyno daemon:settings` shows.
    pub fn resolved(&self) -> Vec<Resolved> {
        DEFS.iter()
            .map(|d| {
                let (v, o) = self.get(d.key);
                Resolved {
                    key: d.key.to_string(),
                    env: env_name(d.key),
                    value: v.to_string(),
                    origin: o.clone(),
                    file: (*o == Origin::File).then(|| self.file.display().to_string()),
                    help: d.help.to_string(),
                }
            })
            .collect()
    }
}

/// The daemon's settings, parsed.
#[derive(Debug, Clone)]
pub struct Settings {
    pub router_addr: String,
    /// `None`: no HTTPS listener. Unlike the HTTP listener's, a failure to bind it only warns.
    pub https_addr: Option<String>,
    pub boot_timeout: Duration,
    pub stop_timeout: Duration,
    /// Heroku's schedule shape (at once, then up to 20, 40, 60, 180, 320 minutes) in seconds.
    pub crash_cooloff: Vec<Duration>,
    pub crash_reset: Duration,
    /// Bytes.
    pub memory_quota: u64,
    /// Bytes; `None`: the layer is a directory on DYNO_HOME's filesystem.
    pub disk_limit: Option<u64>,
    pub memory_interval: Duration,
    pub cycle: Option<Duration>,
    pub idle_after: Duration,
    pub compile_timeout: Duration,
    /// Releases per app whose slugs garbage collection keeps (at least 1).
    pub keep_releases: usize,
    /// Bytes; `None`: caches are never emptied for their size.
    pub build_cache_limit: Option<u64>,
    pub buildpacks: Option<PathBuf>,
    /// `None`: dynos share the host's network.
    pub network: Option<(Ipv4Addr, u8)>,
    pub log: String,
    pub allow_empty_db: bool,
    pub router: crate::router::RouterConfig,
    /// Every setting as given, for `daemon:settings`.
    pub resolved: Vec<Resolved>,
}

impl Settings {
    /// The environment and the settings file of `home`.
    pub fn load(home: &Path) -> Result<Settings> {
        Settings::parse(&Raw::load(home)?)
    }

    pub fn parse(raw: &Raw) -> Result<Settings> {
        let mb = |key: &str, min: u64| -> Result<u64> { Ok(raw.whole(key, min)? * 1024 * 1024) };
        let r = crate::router::RouterConfig::default();
        let router = crate::router::RouterConfig {
            request_timeout: raw.secs("router_request_timeout", 0.001)?,
            idle_timeout: Some(raw.secs("router_idle_timeout", 0.001)?),
            boot_timeout: raw.secs("router_boot_timeout", 0.001)?,
            client_idle_timeout: raw.secs("router_client_idle_timeout", 0.001)?,
            header_read_timeout: raw.secs("router_header_timeout", 0.001)?,
            max_client_connections: raw.whole("router_max_client_connections", 1)? as usize,
            max_client_pending: raw.whole("router_max_client_pending", 1)? as usize,
            ..r
        };
        let https = raw.get("https_addr").0.trim();
        let cooloff = raw.get("crash_cooloff").0;
        let crash_cooloff = cooloff
            .split(',')
            .map(|s| {
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e9)
                    .map(Duration::from_secs_f64)
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| raw.bad("crash_cooloff", "seconds separated by commas, e.g. 0,20,40"))?;
        let network = match raw.get("network").0.trim() {
            "host" => None,
            v => Some(
                crate::runtime::net::parse_cidr(v)
                    .filter(|(_, len)| *len <= 24)
                    .ok_or_else(|| {
                        raw.bad(
                            "network",
                            "an IPv4 network of /24 or larger (e.g. 10.231.0.0/16), or `host`",
                        )
                    })?,
            ),
        };
        let buildpacks = raw.get("buildpacks").0.trim();
        let log = raw.get("log").0.trim().to_string();
        if tracing_subscriber::EnvFilter::try_new(&log).is_err() {
            return Err(raw.bad("log", "a log filter such as info or dyno=debug"));
        }
        Ok(Settings {
            router_addr: raw.addr("router_addr")?,
            https_addr: if https == "off" || https.is_empty() {
                None
            } else {
                Some(raw.addr("https_addr")?)
            },
            boot_timeout: raw.secs("boot_timeout", 0.001)?,
            stop_timeout: raw.secs("stop_timeout", 0.0)?,
            crash_cooloff,
            crash_reset: raw.secs("crash_reset", 0.0)?,
            memory_quota: mb("memory_quota", 4)?,
            disk_limit: Some(mb("disk_limit", 0)?).filter(|b| *b > 0),
            memory_interval: raw.secs("memory_interval", 0.1)?,
            cycle: Some(raw.secs("cycle", 0.0)?).filter(|d| !d.is_zero()),
            idle_after: raw.secs("idle_after", 0.001)?,
            compile_timeout: raw.secs("compile_timeout", 1.0)?,
            keep_releases: raw.whole("keep_releases", 1)? as usize,
            build_cache_limit: Some(mb("build_cache_limit", 0)?).filter(|b| *b > 0),
            buildpacks: (!buildpacks.is_empty()).then(|| PathBuf::from(buildpacks)),
            network,
            log,
            allow_empty_db: raw.boolean("allow_empty_db")?,
            router,
            resolved: raw.resolved(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(file: Option<&str>, env: &[(&str, &str)]) -> Result<Settings> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::parse(&Raw::from_parts(
            PathBuf::from("/h/config.toml"),
            file,
            &env,
        )?)
    }

    fn err(file: Option<&str>, env: &[(&str, &str)]) -> String {
        format!("{:#}", parse(file, env).unwrap_err())
    }

    #[test]
    fn defaults_are_heroku_s() {
        let s = parse(None, &[]).unwrap();
        assert_eq!(s.boot_timeout, Duration::from_secs(60));
        assert_eq!(s.memory_quota, 512 << 20);
        assert_eq!(s.router_addr, "127.0.0.1:5000");
        assert_eq!(s.crash_cooloff.len(), 6);
        assert_eq!(s.network, Some((Ipv4Addr::new(10, 231, 0, 0), 16)));
        assert!(s.resolved.iter().all(|r| r.origin == Origin::Default));
        assert_eq!(s.resolved.len(), DEFS.len());
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let file = "boot_timeout = 90\nrouter_addr = \"127.0.0.1:6000\"\ncrash_cooloff = [0, 5]\nnetwork = \"host\"\n";
        let s = parse(Some(file), &[("DYNO_BOOT_TIMEOUT", "1.5")]).unwrap();
        assert_eq!(s.boot_timeout, Duration::from_millis(1500));
        assert_eq!(s.router_addr, "127.0.0.1:6000");
        assert_eq!(
            s.crash_cooloff,
            vec![Duration::ZERO, Duration::from_secs(5)]
        );
        assert_eq!(s.network, None);
        let origin = |k: &str| s.resolved.iter().find(|r| r.key == k).unwrap().clone();
        assert_eq!(origin("boot_timeout").origin, Origin::Env);
        assert_eq!(origin("router_addr").origin, Origin::File);
        assert_eq!(
            origin("router_addr").file.as_deref(),
            Some("/h/config.toml")
        );
        assert_eq!(origin("stop_timeout").origin, Origin::Default);
    }

    #[test]
    fn bad_values_in_the_environment_are_refused_naming_them() {
        for (k, v) in [
            ("DYNO_BOOT_TIMEOUT", "1.5s"),
            ("DYNO_BOOT_TIMEOUT", "0"),
            ("DYNO_MEMORY_QUOTA", "lots"),
            ("DYNO_MEMORY_QUOTA", "2"),
            ("DYNO_DISK_LIMIT", "-1"),
            ("DYNO_CRASH_COOLOFF", "0,x"),
            ("DYNO_ROUTER_ADDR", "5000"),
            ("DYNO_HTTPS_ADDR", "localhost"),
            ("DYNO_NETWORK", "10.0.0.0/25"),
            ("DYNO_ROUTER_MAX_CLIENT_PENDING", "0"),
            ("DYNO_ALLOW_EMPTY_DB", "maybe"),
            ("DYNO_COMPILE_TIMEOUT", "NaN"),
            ("DYNO_LOG", "dyno=[["),
        ] {
            let e = err(None, &[(k, v)]);
            assert!(
                e.starts_with(&format!("{k}={v:?}: expected ")),
                "{k}={v}: {e}"
            );
        }
    }

    #[test]
    fn bad_files_are_refused_naming_the_file() {
        let e = err(Some("boot_timeout = \"soon\"\n"), &[]);
        assert!(
            e.contains("boot_timeout = \"soon\" in /h/config.toml: expected"),
            "{e}"
        );
        let e = err(Some("boot_timout = 60\n"), &[]);
        assert!(
            e.contains("/h/config.toml: unknown setting `boot_timout`"),
            "{e}"
        );
        let e = err(Some("boot_timeout = \n"), &[]);
        assert!(e.contains("/h/config.toml is not valid TOML"), "{e}");
        let e = err(Some("allow_empty_db = true\n"), &[]);
        assert!(e.contains("only be set in the environment"), "{e}");
        let e = err(Some("memory_quota = [1]\n"), &[]);
        assert!(e.contains("expected a string or a number"), "{e}");
        // A bad file is refused even when the environment overrides the key.
        assert!(parse(Some("nonsense = 1\n"), &[("DYNO_NONSENSE", "1")]).is_err());
    }
}

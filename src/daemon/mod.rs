//! `dyno daemon`: owns all state and long-running work. One per `DYNO_HOME`, as root.
//!
//! It serves the API on `DYNO_HOME/daemon.sock` (0600), runs the router, the dyno manager and
//! builds. At start it re-adopts dynos whose shim survived the previous daemon and cleans up what
//! dead ones left; then it brings every app's formation back (after a reboot too).

pub mod addons;
pub mod api;
pub mod api_https;
pub mod api_server;
pub mod backups;
pub mod deploy;
pub mod gc;
pub mod git_http;
pub mod home;
pub mod idle;
pub mod launch;
pub mod log_sessions;
pub mod manager;
pub mod oneoff;
pub mod release;
pub mod rendezvous;
pub mod routing;
pub mod run;
pub mod scheduler;

use crate::build::{BuildOutput, Builder};
use crate::logs::{LogLine, Logs};
use crate::paths::Paths;
use crate::router::RouteTable;
use crate::runtime::Runtime;
use crate::store::Store;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Tunables: `crate::settings` (environment, then `config.toml`, then defaults).
pub use crate::settings::Settings;

pub struct Daemon {
    pub paths: Paths,
    pub settings: Settings,
    pub store: Store,
    pub logs: Logs,
    pub runtime: Runtime,
    pub routes: RouteTable,
    pub builder: Builder,
    pub manager: manager::Manager,
    /// Attached one-off dynos (`dyno run`), apart from the formation's.
    pub runs: run::RunDynos,
    pub router_addr: Option<SocketAddr>,
    /// The HTTPS listener's address, when it runs.
    pub https_addr: Option<SocketAddr>,
    /// The local CA's certificate (`DYNO_HOME/tls/ca.pem`), when HTTPS is on.
    pub ca_cert: Option<std::path::PathBuf>,
    pub idle: idle::Idle,
    pub drains: crate::drains::Drains,
    /// Output of builds of this daemon's lifetime, by build id.
    pub builds: Mutex<HashMap<String, Arc<BuildOutput>>>,
    /// Set once `daemon:stop` began.
    shutting_down: AtomicBool,
    /// Whether the dynos stay running when the daemon goes (an upgrade).
    pub keep_dynos: AtomicBool,
    pub shutdown: Notify,
    /// Notified whenever a dyno is gone.
    pub dyno_gone: Notify,
    /// Hands the router's port inside each dyno to the router.
    pub inbound: crate::router::Inbound,
    /// The add-on servers (PostgreSQL, Redis) this daemon supervises.
    pub addons: addons::Addons,
    /// The HTTPS API: its URL, token, public CA certificate.
    pub api: api_https::ApiInfo,
    /// Log sessions handed out over HTTPS (their secret URLs).
    pub log_sessions: log_sessions::Sessions,
    /// `heroku run`'s rendezvous (one-off dynos attached over HTTPS).
    pub rendezvous: rendezvous::Rendezvous,
}

impl Daemon {
    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub fn begin_shutdown(&self, keep_dynos: bool) {
        self.keep_dynos.store(keep_dynos, Ordering::SeqCst);
        self.shutting_down.store(true, Ordering::SeqCst);
        self.shutdown.notify_waiters();
        self.shutdown.notify_one();
    }

    /// `app[api]` lines, e.g. `Release v3 created by user`.
    pub fn api_log(&self, app: &str, msg: impl Into<String>) {
        self.logs.push(app, LogLine::new("app", "api", msg));
    }

    /// Serves the router's port inside `dyno`'s network namespace until the guard is dropped
    /// (when the dyno is gone).
    pub fn serve_router_port(
        &self,
        dyno: &crate::runtime::DynoHandle,
    ) -> Option<crate::router::InboundGuard> {
        match self.runtime.router_listener(dyno) {
            Ok(l) => l.map(|l| self.inbound.add(l)),
            Err(e) => {
                tracing::warn!(dyno = %dyno.id, "the router's port inside: {e:#}");
                None
            }
        }
    }

    /// Every app's `<app>.localhost` resolves inside dynos: call when apps come and go.
    pub fn apps_changed(&self) {
        let Some(net) = &self.runtime.net else { return };
        let names: Vec<String> = match self.store.apps() {
            Ok(apps) => apps.into_iter().map(|a| a.name).collect(),
            Err(e) => {
                tracing::warn!("listing apps for the dynos' hosts file: {e:#}");
                return;
            }
        };
        if let Err(e) = net.set_apps(&names) {
            tracing::warn!("writing the dynos' hosts file: {e:#}");
        }
    }

    pub fn web_url(&self, app: &str) -> String {
        match self.router_addr {
            Some(a) if a.port() == 80 => format!("http://{app}.localhost/"),
            Some(a) => format!("http://{app}.localhost:{}/", a.port()),
            None => format!("http://{app}.localhost/"),
        }
    }
}

/// Holds `daemon.lock` for the daemon's lifetime: one daemon per `DYNO_HOME`.
fn lock(paths: &Paths) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(paths.daemon_lock())?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
        anyhow::anyhow!(
            "another dyno daemon already runs for {}",
            paths.home.display()
        )
    })
}

pub fn main() -> i32 {
    // Everything the daemon (and the shims it spawns) creates is private to root, before any
    // thread exists: the process-wide umask is never flipped later (see home.rs for the few
    // paths the dyno user reads).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    // Settings first: a bad one stops the daemon before anything starts, and names itself.
    let (paths, settings) = match Paths::from_env().and_then(|p| Ok((Settings::load(&p.home)?, p)))
    {
        Ok((s, p)) => (p, s),
        Err(e) => {
            eprintln!("dyno daemon: {e:#}");
            return 1;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&settings.log).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(paths, settings)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("dyno daemon: {e:#}");
            tracing::error!("{e:#}");
            1
        }
    }
}

async fn run(paths: Paths, settings: Settings) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "dyno's daemon needs root (dynos are containers: cgroups and mounts); run it with sudo"
        );
    }
    // SIGHUP's handler exists before the lock is held: a CLI that finds the lock held and no
    // socket sends SIGHUP to its holder (api_server rebinds), which must never kill a daemon
    // still starting.
    let _hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let _lock = lock(&paths)?;
    // Before anything is opened or cleaned: no database while dynos or slugs remain → refuse.
    home::check_db(&paths, settings.allow_empty_db)?;
    home::tighten(&paths);
    let network = settings.network;
    let store = home::open_store(&paths)?;
    let listener = tokio::net::TcpListener::bind(&settings.router_addr)
        .await
        .with_context(|| {
            format!(
                "the router cannot listen on {} (set DYNO_ROUTER_ADDR to another address)",
                settings.router_addr
            )
        })?;
    let router_addr = listener.local_addr()?;
    let mut runtime = Runtime::new(&paths).context("preparing the container runtime")?;
    if let Some(base) = network {
        let net = crate::runtime::net::Network::setup(&paths, base, Some(router_addr.port()))
            .context("setting up the dynos' network")?;
        tracing::info!(bridge = %net.bridge, subnet = %net.subnet, "dyno network");
        runtime = runtime.with_network(net);
    }
    if let Some(size) = settings.disk_limit {
        let pool = crate::runtime::disk::Pool::new(&paths.disks(), size)
            .context("preparing the dynos' disks")?;
        runtime = runtime.with_disks(pool);
    }
    let builder = Builder::new(
        paths.clone(),
        crate::build::find_buildpacks(settings.buildpacks.as_deref())?,
        settings.compile_timeout,
    );
    // Builds never outlive their daemon: what a previous one left is cleaned up and failed.
    runtime.clean_builds();
    let _ = std::fs::remove_dir_all(paths.builds());
    store.fail_unfinished_builds()?;
    // Every app has its git repository, with a hook calling this binary.
    let exe = crate::git::dyno_exe();
    for app in store.apps()? {
        if let Err(e) = crate::git::ensure_repo(&paths, &app.name, &exe) {
            tracing::warn!(app = %app.name, "git repository: {e:#}");
        }
    }
    let routes = RouteTable::default();
    let https = match &settings.https_addr {
        Some(addr) => match routing::https_listener(&paths, addr, &routes).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!("no HTTPS listener: {e:#}");
                None
            }
        },
        None => None,
    };
    let api_token = api_https::load_or_create_token(&paths).context("the API token")?;
    let api_https = match &settings.api_addr {
        Some(addr) => match api_https::bind(&paths, addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!("no HTTPS API: {e:#}");
                None
            }
        },
        None => None,
    };
    let api = api_https::ApiInfo {
        url: api_https.as_ref().map(|(l, _)| api_https::base_url(l.addr)),
        token: api_token,
        ca_public: api_https.as_ref().map(|(_, ca)| ca.clone()),
    };
    let (inbound, inbound_listeners) = crate::router::Inbound::channel();
    let logs = Logs::with_dir(&paths.home.join("logs")).context("the log history directory")?;
    let idle = idle::Idle::load(&store).context("the idled apps")?;
    let d = Arc::new(Daemon {
        paths: paths.clone(),
        settings,
        store,
        logs,
        runtime,
        routes,
        builder,
        manager: manager::Manager::default(),
        runs: run::RunDynos::default(),
        router_addr: Some(router_addr),
        https_addr: https.as_ref().map(|h| h.addr),
        ca_cert: https.as_ref().map(|h| h.ca_cert.clone()),
        idle,
        drains: crate::drains::Drains::default(),
        builds: Mutex::new(HashMap::new()),
        shutting_down: AtomicBool::new(false),
        keep_dynos: AtomicBool::new(false),
        shutdown: Notify::new(),
        dyno_gone: Notify::new(),
        inbound,
        addons: addons::Addons::default(),
        api,
        log_sessions: log_sessions::Sessions::default(),
        rendezvous: rendezvous::Rendezvous::default(),
    });
    tracing::info!(home = %paths.home.display(), instance = %paths.instance, router = %router_addr, "dyno daemon {} starting", crate::api::VERSION);

    // A release phase does not survive its daemon: its release is marked failed.
    release::fail_interrupted(&d)?;

    // Dynos of a previous daemon: adopt the living, clean up after the dead.
    for h in d.runtime.adopt_or_clean()? {
        let id = h.id.clone();
        if run::reap_orphan(&d, &h) {
            continue;
        }
        match manager::adopt(&d, h.clone()) {
            Ok(()) => tracing::info!(dyno = %id, "re-adopted"),
            Err(e) => {
                tracing::warn!(dyno = %id, "cannot adopt ({e:#}); stopping it");
                let _ = d.runtime.kill(&h);
            }
        }
    }

    // Network links of no adopted dyno: a crash's leftovers.
    if let Some(net) = &d.runtime.net {
        let keep: std::collections::HashSet<String> = d
            .manager
            .all()
            .iter()
            .filter_map(|e| e.handle.as_ref()?.spec.network.as_ref())
            .map(|n| n.veth.clone())
            .collect();
        if let Err(e) = net.clean_leftovers(&keep) {
            tracing::warn!("cleaning the dyno network's leftovers: {e:#}");
        }
    }
    d.apps_changed();

    let log_d = d.clone();
    let router_log: crate::router::RouterLog = Arc::new(move |app: &str, line: String| {
        log_d.logs.push(app, LogLine::new("heroku", "router", line));
    });
    let routes = d.routes.clone();
    let config = d.settings.router.clone();
    let log = router_log.clone();
    // With HTTPS on, the router's HTTP port answers TLS too (recognised by its first byte).
    let sniff = https.as_ref().map(|h| h.acceptor.clone());
    tokio::spawn(async move {
        let served = match sniff {
            Some(acceptor) => {
                crate::router::serve_with_inbound_and_tls(
                    listener,
                    routes,
                    log,
                    config,
                    inbound_listeners,
                    acceptor,
                )
                .await
            }
            None => {
                crate::router::serve_with_inbound(listener, routes, log, config, inbound_listeners)
                    .await
            }
        };
        if let Err(e) = served {
            tracing::error!("router: {e:#}");
        }
    });
    if let Some(h) = https {
        let routes = d.routes.clone();
        let config = d.settings.router.clone();
        tokio::spawn(async move {
            if let Err(e) =
                crate::router::serve_tls(h.listener, routes, router_log, config, h.acceptor).await
            {
                tracing::error!("router (https): {e:#}");
            }
        });
    }
    routing::start(&d);

    // The add-on servers: adopted when they survived, else started, before any dyno needs them.
    addons::start_all(&d).await;

    // Bring every app's formation back (after a daemon restart or a reboot).
    for app in d.store.apps()? {
        manager::kick(&d, &app.id);
    }
    tokio::spawn(manager::move_off_host_network(d.clone()));
    tokio::spawn(scheduler::run(d.clone()));

    let server = tokio::spawn(api_server::serve(d.clone()));
    let https_api = match api_https {
        Some((l, _)) => {
            tracing::info!(addr = %l.addr, "the API over HTTPS");
            match rendezvous::bind(l.addr).await {
                Ok(r) => {
                    *d.rendezvous.addr.lock().unwrap() = r.local_addr().ok();
                    tokio::spawn(rendezvous::serve(d.clone(), r, l.acceptor.clone()));
                }
                Err(e) => tracing::warn!("no rendezvous for heroku run: {e}"),
            }
            Some(tokio::spawn(api_https::serve(d.clone(), l)))
        }
        None => None,
    };

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::select! {
        _ = d.shutdown.notified() => {}
        _ = term.recv() => d.begin_shutdown(false),
        _ = int.recv() => d.begin_shutdown(false),
    }
    let keep = d.keep_dynos.load(Ordering::SeqCst);
    tracing::info!(keep_dynos = keep, "stopping");
    d.runtime.clean_builds();
    if let Some(pool) = &d.runtime.disks {
        pool.clean();
    }
    if !keep {
        stop_all(&d).await;
        addons::stop_all(&d).await;
        remove_instance_cgroups(&paths);
        if let Some(net) = &d.runtime.net {
            if let Err(e) = net.teardown() {
                tracing::warn!("removing the dyno network: {e:#}");
            }
        }
    }
    server.abort();
    if let Some(h) = https_api {
        h.abort();
        api_https::unpublish_ca(&paths);
    }
    d.logs.flush();
    let _ = std::fs::remove_file(paths.socket());
    tracing::info!("stopped");
    Ok(())
}

/// Stops every dyno and waits for them to be gone (bounded by the stop timeout).
async fn stop_all(d: &Arc<Daemon>) {
    run::stop_all(d);
    let deadline = tokio::time::Instant::now() + d.settings.stop_timeout + Duration::from_secs(10);
    loop {
        // Every round: a reconcile that was already past its shutdown check (a release being
        // activated) may still start a dyno after the first round.
        for e in d.manager.all() {
            if e.handle.is_some() && !e.stopping {
                manager::stop_dyno(d, &e);
            }
        }
        let left = d
            .manager
            .all()
            .iter()
            .filter(|e| e.handle.is_some())
            .count();
        if left == 0 || tokio::time::Instant::now() > deadline {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), d.dyno_gone.notified()).await;
    }
}

/// Removes this instance's (now empty) cgroup parents, `/dyno/<instance>` under every hierarchy.
fn remove_instance_cgroups(paths: &Paths) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        let dir = h.path().join(paths.cgroup_parent().trim_start_matches('/'));
        if dir.is_dir() {
            // rmdir only succeeds on an empty cgroup: a dyno left running keeps its parent.
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

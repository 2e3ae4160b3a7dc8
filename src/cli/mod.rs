//! The command line: clap definitions and dispatch. Each verb group has its own module, named
//! as Heroku's CLI names its topics (`apps`, `ps`, `logs`, `releases`).

mod addons;
mod apps;
mod auth;
mod buildpacks;
mod builds;
mod certs;
mod config;
mod cron;
mod daemon;
mod dash;
mod domains;
mod drains;
mod export;
mod git;
mod idling;
mod logs;
mod pg_backups;
mod ps;
mod releases;
mod run;
mod table;
mod up;

use crate::client::Client;
use crate::paths::Paths;
use anyhow::{bail, Result};
use clap::{Args, CommandFactory, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "dyno",
    version,
    about = "Heroku on your own machine: buildpacks, releases, dynos as containers, a router and one log stream",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `-a/--app`, as Heroku's CLI has it.
#[derive(Args, Debug, Clone, Default)]
pub struct AppArg {
    /// App to run the command against (default: the app of the current directory)
    #[arg(short = 'a', long = "app", env = "DYNO_APP")]
    pub app: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build the current directory and run it: create the app if needed, build, release, scale
    Up {
        #[command(flatten)]
        app: AppArg,
    },
    /// List your apps
    Apps {
        #[arg(long)]
        json: bool,
    },
    /// Create an app (a random name when none is given)
    #[command(name = "apps:create")]
    AppsCreate {
        name: Option<String>,
        /// Also make it the app of the current directory
        #[arg(long)]
        no_remote: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show an app's details
    #[command(name = "apps:info")]
    AppsInfo {
        #[command(flatten)]
        app: AppArg,
        #[arg(long, short = 'j')]
        json: bool,
    },
    /// Destroy an app and everything of it
    #[command(name = "apps:destroy")]
    AppsDestroy {
        /// The app to destroy (or -a)
        name: Option<String>,
        #[command(flatten)]
        app: AppArg,
        /// The app's name again, to confirm
        #[arg(long, short = 'c')]
        confirm: Option<String>,
    },
    /// Rename an app
    #[command(name = "apps:rename")]
    AppsRename {
        newname: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// List the app's dynos
    Ps {
        #[command(flatten)]
        app: AppArg,
        #[arg(long)]
        json: bool,
    },
    /// Scale process types: `web=3 worker=1`, `web+1`, `worker-1`
    #[command(name = "ps:scale")]
    PsScale {
        // No hyphen values: `-a app` after the pairs is the app flag, as with heroku.
        #[arg(required = true)]
        changes: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Show the app's logs
    Logs {
        #[command(flatten)]
        app: AppArg,
        /// Number of lines to show
        #[arg(short = 'n', long = "num", default_value_t = 100)]
        num: usize,
        /// Keep streaming new lines
        #[arg(short = 't', long)]
        tail: bool,
        /// Only lines of this dyno or process type (`web`, `web.1`)
        #[arg(short = 'd', long = "dyno", alias = "ps")]
        dyno: Option<String>,
        /// Only lines of this source (`app`, `heroku`)
        #[arg(short = 's', long)]
        source: Option<String>,
    },
    /// List the app's releases
    Releases {
        #[command(flatten)]
        app: AppArg,
        #[arg(short = 'n', long = "num", default_value_t = 15)]
        num: usize,
        #[arg(long)]
        json: bool,
    },
    /// Run a command in a one-off dyno: `dyno run bash`, `dyno run -- python manage.py migrate`
    Run {
        #[command(flatten)]
        app: AppArg,
        /// Plain stdin/stdout/stderr instead of a terminal (the default without one)
        #[arg(long)]
        no_tty: bool,
        /// Environment variables for this dyno: KEY=value, several as "K1=v1;K2=v2"; repeatable
        #[arg(short = 'e', long = "env", value_name = "KEY=value")]
        env: Vec<String>,
        /// Exit with the dyno's exit code (always done; accepted as Heroku's CLI has it)
        #[arg(short = 'x', long = "exit-code")]
        exit_code: bool,
        /// The command and its arguments (joined with spaces, parsed by the dyno's shell)
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Dashboard: formation, dynos, releases, router metrics and live logs in one screen
    Dash {
        #[command(flatten)]
        app: AppArg,
    },
    /// Show a release: its change, when, and its config vars
    #[command(name = "releases:info")]
    ReleasesInfo {
        /// The release (`v3`, `3`; default: the newest)
        release: Option<String>,
        #[command(flatten)]
        app: AppArg,
        #[arg(long)]
        json: bool,
        /// Config vars as KEY='value' lines
        #[arg(short = 's', long)]
        shell: bool,
    },
    /// Roll back to an earlier release's slug and config vars (a new release)
    #[command(name = "releases:rollback")]
    ReleasesRollback {
        /// The release to roll back to (default: the succeeded one before the current)
        release: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Show the output of a release's release command
    #[command(name = "releases:output")]
    ReleasesOutput {
        /// The release (`v3`, `3`; default: the newest)
        release: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Show the app's config vars
    Config {
        #[command(flatten)]
        app: AppArg,
        #[arg(short = 'j', long)]
        json: bool,
        /// As KEY='value' lines, for a shell
        #[arg(short = 's', long)]
        shell: bool,
    },
    /// Show one config var's value
    #[command(name = "config:get")]
    ConfigGet {
        key: String,
        #[command(flatten)]
        app: AppArg,
        /// As KEY='value', for a shell
        #[arg(short = 's', long)]
        shell: bool,
    },
    /// Set config vars (a new release; the dynos restart with it)
    #[command(name = "config:set")]
    ConfigSet {
        /// KEY=value pairs
        #[arg(required = true, value_name = "KEY=VALUE")]
        vars: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Unset config vars (a new release; the dynos restart with it)
    #[command(name = "config:unset")]
    ConfigUnset {
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Restart the app's dynos, those of one type, or one dyno
    #[command(name = "ps:restart")]
    PsRestart {
        /// A dyno (`web.1`) or process type (`web`); default: all
        dyno: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Stop a dyno or the dynos of a type (the formation's are started again)
    #[command(name = "ps:stop")]
    PsStop {
        /// A dyno (`web.1`, `run.4821`) or process type
        dyno: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Kill a dyno or the dynos of a type with SIGKILL, without the stop grace period
    #[command(name = "ps:kill")]
    PsKill {
        /// A dyno (`web.1`, `run.4821`) or process type
        dyno: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Run a command in a one-off dyno in the background; its output goes to the logs
    #[command(name = "run:detached")]
    RunDetached {
        #[command(flatten)]
        app: AppArg,
        /// Environment for the dyno: 'KEY=value;KEY2=value2'
        #[arg(short = 'e', long)]
        env: Option<String>,
        /// The command (and its arguments)
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// List the app's domains
    Domains {
        #[command(flatten)]
        app: AppArg,
        #[arg(long)]
        json: bool,
    },
    /// Add a custom domain to the app (the router answers for it)
    #[command(name = "domains:add")]
    DomainsAdd {
        hostname: String,
        #[command(flatten)]
        app: AppArg,
        #[arg(long)]
        json: bool,
    },
    /// Remove a custom domain from the app
    #[command(name = "domains:remove")]
    DomainsRemove {
        hostname: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// List the app's log drains
    Drains {
        #[command(flatten)]
        app: AppArg,
        #[arg(long)]
        json: bool,
    },
    /// Forward the app's logs to syslog+tcp://HOST:PORT, syslog+tls://HOST:PORT or an http(s):// URL
    #[command(name = "drains:add")]
    DrainsAdd {
        url: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Stop forwarding the app's logs to a drain (by URL or token)
    #[command(name = "drains:remove")]
    DrainsRemove {
        url: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Show or set idling: `on` stops web dynos after DYNO_IDLE_AFTER (30 min) without requests
    #[command(name = "ps:idle")]
    PsIdle {
        /// `on` or `off` (nothing: show)
        state: Option<String>,
        #[command(flatten)]
        app: AppArg,
        #[arg(long)]
        json: bool,
    },
    /// List the app's add-ons and their attachments
    Addons {
        #[command(flatten)]
        app: AppArg,
        #[arg(long)]
        json: bool,
    },
    /// Create an add-on: heroku-postgresql[:plan] (DATABASE_URL), heroku-redis[:plan] (REDIS_URL) or scheduler
    #[command(name = "addons:create")]
    AddonsCreate {
        /// The service and plan, `heroku-postgresql` or `heroku-redis:mini`
        plan: String,
        /// The attachment's name: its config var is NAME_URL
        #[arg(long = "as", value_name = "NAME")]
        as_name: Option<String>,
        #[command(flatten)]
        app: AppArg,
        #[arg(long)]
        json: bool,
    },
    /// Show an add-on (by name, or its attachment name in the app: DATABASE)
    #[command(name = "addons:info")]
    AddonsInfo {
        addon: String,
        #[command(flatten)]
        app: AppArg,
        #[arg(long)]
        json: bool,
    },
    /// Attach an existing add-on to another app (a release of that app)
    #[command(name = "addons:attach")]
    AddonsAttach {
        addon: String,
        /// The attachment's name: its config var is NAME_URL
        #[arg(long = "as", value_name = "NAME")]
        as_name: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Detach an add-on from an app (a release unsetting its config var)
    #[command(name = "addons:detach")]
    AddonsDetach {
        /// The attachment's name (ANALYTICS) or id
        attachment: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Destroy an add-on and its data (detached from every app, in a release each)
    #[command(name = "addons:destroy")]
    AddonsDestroy {
        addon: String,
        #[arg(short = 'c', long)]
        confirm: Option<String>,
        /// Also when other apps have it attached
        #[arg(short = 'f', long)]
        force: bool,
        #[command(flatten)]
        app: AppArg,
    },
    /// Open psql on a Postgres add-on (default: DATABASE), or run one command with -c
    #[command(name = "pg:psql")]
    PgPsql {
        /// The add-on or attachment (DATABASE, HEROKU_POSTGRESQL_RED, postgresql-…)
        database: Option<String>,
        /// SQL to run instead of an interactive session
        #[arg(short = 'c', long)]
        command: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Show the app's Postgres databases: plan, version, size, tables, connections
    #[command(name = "pg:info")]
    PgInfo {
        database: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    #[command(flatten)]
    PgBackups(pg_backups::Cmd),
    #[command(flatten)]
    Cron(cron::Cmd),
    /// Open redis-cli on a Redis add-on (default: REDIS), or run one command
    #[command(name = "redis:cli")]
    RedisCli {
        /// The add-on or attachment (default: REDIS)
        database: Option<String>,
        /// A command to run instead of an interactive session
        #[arg(short = 'c', long)]
        command: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Show the app's Redis add-ons: plan, version, memory, clients
    #[command(name = "redis:info")]
    RedisInfo {
        database: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Print the token of the daemon's HTTPS API (for the official heroku CLI)
    #[command(name = "auth:token")]
    AuthToken,
    /// Print the exports that point the official heroku CLI at this daemon:
    /// eval "$(dyno heroku:env)"
    #[command(name = "heroku:env")]
    HerokuEnv,
    /// Show the HTTPS listener and how to trust its local certificate authority
    Certs {
        #[arg(long)]
        json: bool,
    },
    /// Trust the local certificate authority: the system store (update-ca-certificates) and the
    /// NSS databases browsers use, where present
    #[command(name = "certs:trust")]
    CertsTrust,
    /// Remove the local certificate authority from the system store and the NSS databases
    #[command(name = "certs:untrust")]
    CertsUntrust,
    /// List the app's builds (status, buildpacks, commit, slug size, duration)
    Builds {
        #[command(flatten)]
        app: AppArg,
        #[arg(short = 'n', long = "num", default_value_t = 15)]
        num: usize,
        #[arg(long)]
        json: bool,
    },
    /// Show a build's output (default: the latest build)
    #[command(name = "builds:output")]
    BuildsOutput {
        /// Build id (a prefix is enough)
        id: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Show the app's buildpacks (none: detected on each build)
    Buildpacks {
        #[command(flatten)]
        app: AppArg,
        #[arg(long)]
        json: bool,
    },
    /// Set the app's buildpack (a shipped name such as `python`, a directory or a git URL)
    #[command(name = "buildpacks:set")]
    BuildpacksSet {
        buildpack: String,
        /// Replace the buildpack at this position (1-based)
        #[arg(short = 'i', long)]
        index: Option<usize>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Add a buildpack to the app's list (at the end, or at --index)
    #[command(name = "buildpacks:add")]
    BuildpacksAdd {
        buildpack: String,
        /// Insert at this position (1-based)
        #[arg(short = 'i', long)]
        index: Option<usize>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Remove a buildpack from the app's list (by URL or --index)
    #[command(name = "buildpacks:remove")]
    BuildpacksRemove {
        buildpack: Option<String>,
        #[arg(short = 'i', long)]
        index: Option<usize>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Clear the app's buildpacks: the next build detects them again
    #[command(name = "buildpacks:clear")]
    BuildpacksClear {
        #[command(flatten)]
        app: AppArg,
    },
    /// Export a release as an OCI image and Kubernetes manifests (to outgrow one machine)
    Export {
        #[command(flatten)]
        app: AppArg,
        /// The release to export (`v12`, `12`; default: the current one)
        #[arg(long)]
        release: Option<String>,
        /// The directory to write into (default: `<app>-k8s`)
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        /// Also push the image to a registry: `registry.example.com/team/app[:tag]` (default
        /// tag: the release, `v12`); plain http only for a loopback registry
        #[arg(long, value_name = "REF")]
        push: Option<String>,
        /// Registry credentials `USER:PASSWORD` (default: `REGISTRY_AUTH_FILE`)
        #[arg(long, value_name = "USER:PASSWORD")]
        creds: Option<String>,
    },
    /// Show the stack: the runtimes (python3, node, ruby, go) dynos and builds get from the host
    Stack {
        #[arg(long)]
        json: bool,
    },
    /// Add a git remote `dyno` for the app: `git push dyno main` then deploys
    #[command(name = "git:remote")]
    GitRemote {
        #[command(flatten)]
        app: AppArg,
        /// The remote's name
        #[arg(short = 'r', long, default_value = "dyno")]
        remote: String,
    },
    /// A git hook of the apps' repositories (internal)
    #[command(name = "git:hook", hide = true)]
    GitHook {
        /// Only `pre-receive`
        hook: String,
    },
    /// Run the daemon in the foreground (the CLI starts it by itself when needed)
    Daemon,
    /// Stop the daemon and, unless --keep-dynos, every dyno
    #[command(name = "daemon:stop")]
    DaemonStop {
        /// Leave the dynos running, to be re-adopted by the next daemon
        #[arg(long)]
        keep_dynos: bool,
    },
    /// Show whether the daemon runs, its version and the router's address
    #[command(name = "daemon:status")]
    DaemonStatus {
        #[arg(long)]
        json: bool,
    },
    /// Remove slugs past each app's last DYNO_KEEP_RELEASES releases (never one a dyno runs),
    /// stale build directories, the caches of destroyed apps and caches over
    /// DYNO_BUILD_CACHE_LIMIT; also done after every deploy
    Gc {
        /// Only say what would be removed
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show every daemon setting, its value and where it came from (environment,
    /// DYNO_HOME/config.toml or default)
    #[command(name = "daemon:settings")]
    DaemonSettings {
        #[arg(long)]
        json: bool,
    },
    /// Print shell completions
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
    /// Write man pages into a directory
    #[command(hide = true)]
    Man { dir: PathBuf },
    /// Per-dyno helper (internal): creates and holds one container.
    #[command(hide = true)]
    Shim { state_dir: PathBuf },
    /// PID 1 inside a dyno (internal).
    #[command(hide = true)]
    Init {
        /// Run the command without sourcing `.profile.d` (build steps)
        #[arg(long)]
        no_profile: bool,
        command: String,
    },
    /// The static buildpack's web process: serves the app's files on $PORT (internal)
    #[command(hide = true)]
    Static,
}

/// `run` and `run:detached` take their own flags anywhere before `--`, as the heroku CLI does
/// (`dyno run bash -a app`); every other word, `-la` included, belongs to the command. Moves
/// those flags in front and puts `--` before the command, so clap reads them as intended.
pub fn reorder_run_flags(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let sub = args.get(1).and_then(|a| a.to_str()).unwrap_or_default();
    let (with_value, switches): (&[&str], &[&str]) = match sub {
        "run" => (
            &["-a", "--app", "-e", "--env"],
            &["--no-tty", "-x", "--exit-code", "-h", "--help"],
        ),
        "run:detached" => (&["-a", "--app", "-e", "--env"], &["-h", "--help"]),
        _ => return args,
    };
    let mut flags = vec![];
    let mut command = vec![];
    let mut i = 2;
    while i < args.len() {
        let a = args[i].to_str().unwrap_or_default();
        if a == "--" {
            command.extend(args[i + 1..].iter().cloned());
            break;
        }
        if with_value.contains(&a) && i + 1 < args.len() {
            flags.extend([args[i].clone(), args[i + 1].clone()]);
            i += 2;
            continue;
        }
        if switches.contains(&a) || a.starts_with("--app=") || a.starts_with("--env=") {
            flags.push(args[i].clone());
        } else {
            command.push(args[i].clone());
        }
        i += 1;
    }
    let mut out = args[..2].to_vec();
    out.extend(flags);
    if !command.is_empty() {
        out.push("--".into());
        out.extend(command);
    }
    out
}

pub fn main() -> i32 {
    let cli = Cli::parse_from(reorder_run_flags(std::env::args_os().collect()));
    match cli.command {
        Command::Shim { state_dir } => return crate::runtime::shim_main(state_dir),
        Command::Init {
            command,
            no_profile,
        } => return crate::runtime::init_main(command, !no_profile),
        Command::Daemon => return crate::daemon::main(),
        Command::Static => return crate::static_web::main(),
        _ => {}
    }
    quiet_on_broken_pipe();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            eprintln!(" ▸    {e:#}");
            1
        }
    }
}

/// Whether a person can answer a prompt: stdin and stderr (where prompts go) are terminals.
pub fn can_prompt() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Heroku's confirmation for what cannot be undone: at a terminal, `name` must be typed;
/// without one, `refusal` is the error (nothing has changed yet).
pub fn confirm_by_typing(warning: &str, name: &str, refusal: String) -> Result<()> {
    if !can_prompt() {
        bail!("{refusal}");
    }
    eprintln!(" ▸    WARNING: {warning}");
    eprintln!(" ▸    To proceed, type {name} or re-run this command with --confirm {name}");
    let answer: String = dialoguer::Input::new()
        .with_prompt(">")
        .allow_empty(true)
        .interact_text_on(&dialoguer::console::Term::stderr())?;
    if answer.trim() != name {
        bail!("confirmation did not match {name}: aborted, nothing destroyed");
    }
    Ok(())
}

/// A reader that went away (`dyno completions bash | head -c 1`) ends the command quietly, as
/// SIGPIPE ends a C tool. Not by restoring SIGPIPE's default action: `dyno run` writes to
/// sockets, where EPIPE is an answer to handle, not a reason to die. Rust's `print!` panics on
/// EPIPE, so the panic hook recognises that one panic and exits 0 without a word; errors that
/// carry EPIPE up to `main` do the same (`is_broken_pipe`).
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if (msg.contains("Broken pipe") || msg.contains("os error 32")) && output_closed() {
            std::process::exit(0);
        }
        default(info)
    }));
}

/// An error carrying EPIPE while our own output is gone (an EPIPE from the daemon's socket,
/// say, is still reported).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    output_closed()
        && e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        })
}

/// Whether stdout or stderr lost its reader: a pipe's write end polls POLLERR then.
fn output_closed() -> bool {
    let mut fds = [1, 2].map(|fd| libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    });
    // SAFETY: two valid pollfd structs, no timeout.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 0) };
    n > 0 && fds.iter().any(|f| f.revents & libc::POLLERR != 0)
}

async fn run(cmd: Command) -> Result<i32> {
    let paths = Paths::from_env()?;
    match cmd {
        Command::Up { app } => up::up(&paths, app).await,
        Command::Apps { json } => apps::list(&paths, json).await,
        Command::AppsCreate {
            name,
            no_remote,
            json,
        } => apps::create(&paths, name, !no_remote, json).await,
        Command::AppsInfo { app, json } => apps::info(&paths, app, json).await,
        Command::AppsDestroy { name, app, confirm } => {
            apps::destroy(&paths, name.or(app.app), confirm).await
        }
        Command::AppsRename { newname, app } => apps::rename(&paths, app, &newname).await,
        Command::Ps { app, json } => ps::list(&paths, app, json).await,
        Command::PsScale { changes, app } => ps::scale(&paths, app, &changes).await,
        Command::Logs {
            app,
            num,
            tail,
            dyno,
            source,
        } => logs::logs(&paths, app, num, tail, dyno, source).await,
        Command::Releases { app, num, json } => releases::list(&paths, app, num, json).await,
        Command::Run {
            app,
            no_tty,
            env,
            exit_code: _,
            command,
        } => run::run(&paths, app, no_tty, &env, &command).await,
        Command::Dash { app } => dash::dash(&paths, app).await,
        Command::ReleasesInfo {
            release,
            app,
            json,
            shell,
        } => releases::info(&paths, app, release, json, shell).await,
        Command::ReleasesRollback { release, app } => {
            releases::rollback(&paths, app, release).await
        }
        Command::ReleasesOutput { release, app } => releases::output(&paths, app, release).await,
        Command::Config { app, json, shell } => config::list(&paths, app, json, shell).await,
        Command::ConfigGet { key, app, shell } => config::get(&paths, app, &key, shell).await,
        Command::ConfigSet { vars, app } => config::set(&paths, app, &vars).await,
        Command::ConfigUnset { keys, app } => config::unset(&paths, app, &keys).await,
        Command::PsRestart { dyno, app } => ps::stop(&paths, app, dyno, "restart").await,
        Command::PsStop { dyno, app } => ps::stop(&paths, app, Some(dyno), "stop").await,
        Command::PsKill { dyno, app } => ps::stop(&paths, app, Some(dyno), "kill").await,
        Command::RunDetached { app, env, command } => {
            ps::run_detached(&paths, app, &command, env).await
        }
        Command::Domains { app, json } => domains::list(&paths, app, json).await,
        Command::DomainsAdd {
            hostname,
            app,
            json,
        } => domains::add(&paths, app, &hostname, json).await,
        Command::DomainsRemove { hostname, app } => domains::remove(&paths, app, &hostname).await,
        Command::Drains { app, json } => drains::list(&paths, app, json).await,
        Command::DrainsAdd { url, app } => drains::add(&paths, app, &url).await,
        Command::DrainsRemove { url, app } => drains::remove(&paths, app, &url).await,
        Command::PsIdle { state, app, json } => {
            idling::idle(&paths, app, state.as_deref(), json).await
        }
        Command::Addons { app, json } => addons::list(&paths, app, json).await,
        Command::AddonsCreate {
            plan,
            as_name,
            app,
            json,
        } => addons::create(&paths, app, &plan, as_name, json).await,
        Command::AddonsInfo { addon, app, json } => addons::info(&paths, app, &addon, json).await,
        Command::AddonsAttach {
            addon,
            as_name,
            app,
        } => addons::attach(&paths, app, &addon, as_name).await,
        Command::AddonsDetach { attachment, app } => addons::detach(&paths, app, &attachment).await,
        Command::AddonsDestroy {
            addon,
            confirm,
            force,
            app,
        } => addons::destroy(&paths, app, &addon, confirm, force).await,
        Command::PgPsql {
            database,
            command,
            app,
        } => addons::psql(&paths, app, database, command).await,
        Command::PgInfo { database, app } => addons::pg_info(&paths, app, database).await,
        Command::PgBackups(cmd) => pg_backups::run(&paths, cmd).await,
        Command::Cron(cmd) => cron::run(&paths, cmd).await,
        Command::RedisCli {
            database,
            command,
            app,
        } => addons::redis_cli(&paths, app, database, command).await,
        Command::RedisInfo { database, app } => addons::redis_info(&paths, app, database).await,
        Command::AuthToken => auth::token(&paths).await,
        Command::HerokuEnv => auth::heroku_env(&paths).await,
        Command::Certs { json } => certs::show(&paths, json).await,
        Command::CertsTrust => certs::trust(&paths, true).await,
        Command::CertsUntrust => certs::trust(&paths, false).await,
        Command::Builds { app, num, json } => builds::list(&paths, app, num, json).await,
        Command::BuildsOutput { id, app } => builds::output(&paths, app, id).await,
        Command::Buildpacks { app, json } => buildpacks::list(&paths, app, json).await,
        Command::BuildpacksSet {
            buildpack,
            index,
            app,
        } => buildpacks::change(&paths, app, buildpacks::Change::Set(buildpack, index)).await,
        Command::BuildpacksAdd {
            buildpack,
            index,
            app,
        } => buildpacks::change(&paths, app, buildpacks::Change::Add(buildpack, index)).await,
        Command::BuildpacksRemove {
            buildpack,
            index,
            app,
        } => buildpacks::change(&paths, app, buildpacks::Change::Remove(buildpack, index)).await,
        Command::BuildpacksClear { app } => {
            buildpacks::change(&paths, app, buildpacks::Change::Clear).await
        }
        Command::Stack { json } => buildpacks::stack(json),
        Command::Export {
            app,
            release,
            output,
            push,
            creds,
        } => {
            let o = export::Options {
                release,
                out: output,
                push,
                creds,
            };
            export::export(&paths, app, o).await
        }
        Command::GitRemote { app, remote } => git::remote(&paths, app, &remote).await,
        Command::GitHook { hook } => match hook.as_str() {
            "pre-receive" => git::pre_receive(&paths).await,
            other => anyhow::bail!("unknown git hook {other:?}"),
        },
        Command::DaemonStop { keep_dynos } => daemon::stop(&paths, keep_dynos).await,
        Command::DaemonStatus { json } => daemon::status(&paths, json).await,
        Command::DaemonSettings { json } => daemon::settings(&paths, json).await,
        Command::Gc { dry_run, json } => daemon::gc(&paths, dry_run, json).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "dyno", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man { dir } => {
            std::fs::create_dir_all(&dir)?;
            let cmd = Cli::command();
            clap_mangen::generate_to(cmd, &dir)?;
            Ok(0)
        }
        Command::Shim { .. } | Command::Init { .. } | Command::Daemon | Command::Static => {
            unreachable!()
        }
    }
}

/// The app a command is about: `-a`, else the current directory's (its `dyno` git remote, else
/// the directory's record in dyno's database).
pub async fn resolve_app(client: &Client, arg: &AppArg) -> Result<String> {
    if let Some(a) = &arg.app {
        return Ok(a.clone());
    }
    let cwd = std::env::current_dir()?.canonicalize()?;
    if let Some(a) = app_from_git_remote(&cwd) {
        return Ok(a);
    }
    if let Some(a) = app_from_dir_record(client, &cwd).await? {
        return Ok(a);
    }
    bail!(
        "no app specified and none is linked to {}: pass -a APP (or run `dyno up` here first)",
        cwd.display()
    )
}

/// The app named by a git remote called `dyno` (its URL ends in `/<app>.git` or `/<app>`).
pub fn app_from_git_remote(dir: &std::path::Path) -> Option<String> {
    let repo = git2::Repository::discover(dir).ok()?;
    let remote = repo.find_remote("dyno").ok()?;
    let url = remote.url()?.trim_end_matches('/');
    let last = url.rsplit(['/', ':']).next()?;
    let name = last.trim_end_matches(".git");
    crate::names::validate(name).ok()?;
    Some(name.to_string())
}

/// The app recorded for `dir` or its nearest recorded ancestor.
pub async fn app_from_dir_record(client: &Client, dir: &std::path::Path) -> Result<Option<String>> {
    for d in dir.ancestors() {
        let r = client
            .call(crate::api::local::GetDir {
                dir: d.to_string_lossy().into(),
            })
            .await?;
        if r.app.is_some() {
            return Ok(r.app);
        }
    }
    Ok(None)
}

/// Prints a table with aligned columns.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    line(widths.iter().map(|w| "─".repeat(*w)).collect());
    for r in rows {
        line(r.clone());
    }
}

/// Whether output may be coloured (a terminal, and no `NO_COLOR`).
pub fn color() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// "5s ago", "3m ago", as Heroku shows uptimes.
pub fn ago(rfc3339: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(rfc3339) else {
        return rfc3339.to_string();
    };
    let s = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match s {
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dyno_git_remote_names_the_app() {
        let d = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(d.path()).unwrap();
        assert_eq!(app_from_git_remote(d.path()), None);
        repo.remote("heroku", "https://git.heroku.com/other.git")
            .unwrap();
        assert_eq!(
            app_from_git_remote(d.path()),
            None,
            "only the `dyno` remote counts"
        );
        repo.remote("dyno", "/var/lib/dyno/repos/my-app.git")
            .unwrap();
        let sub = d.path().join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        assert_eq!(app_from_git_remote(&sub).as_deref(), Some("my-app"));
    }
}

#[cfg(test)]
mod reorder_tests {
    use super::reorder_run_flags;

    fn re(args: &[&str]) -> Vec<String> {
        reorder_run_flags(args.iter().map(|a| a.into()).collect())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn run_flags_are_taken_anywhere_before_the_double_dash() {
        assert_eq!(
            re(&["dyno", "run", "bash", "-a", "app"]),
            ["dyno", "run", "-a", "app", "--", "bash"]
        );
        assert_eq!(
            re(&["dyno", "run", "ls", "-la"]),
            ["dyno", "run", "--", "ls", "-la"]
        );
        assert_eq!(
            re(&["dyno", "run", "--no-tty", "--", "bash", "-a", "x"]),
            ["dyno", "run", "--no-tty", "--", "bash", "-a", "x"]
        );
        assert_eq!(
            re(&["dyno", "run:detached", "rake", "-e", "A=1", "--app=z", "-x"]),
            [
                "dyno",
                "run:detached",
                "-e",
                "A=1",
                "--app=z",
                "--",
                "rake",
                "-x"
            ]
        );
        assert_eq!(
            re(&["dyno", "ps:scale", "web=1", "-a", "x"]),
            ["dyno", "ps:scale", "web=1", "-a", "x"]
        );
        assert_eq!(re(&["dyno", "run", "-a", "x"]), ["dyno", "run", "-a", "x"]);
    }
}

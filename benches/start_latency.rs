//! Dyno start latency, as root: `scripts/bench-start.sh` (or, with a fresh release binary,
//! `cargo bench --bench start_latency`).
//!
//! Measures, for a dyno on the host network and one in its own network namespace with the
//! default disk limit (a loop-backed ext4 from the spare pool; both have the syscall filter),
//! interleaved, the time from [`Runtime::start`] (what the daemon does on "start this dyno") to the
//! Procfile command running inside the container, read back from the dyno's output spool where
//! the command printed `date +%s%N`. The command also prints a variable exported by the slug's
//! `.profile.d/x.sh`, proving the full init path ran. Side by side (interleaved, same run):
//! `unshare --fork --pid --mount --uts --ipc /bin/true` (spawn to exit) and the same `unshare`
//! running `bash -c 'date +%s%N'` (spawn to command).
//!
//! Shims and inits are the real release binary: `DYNO_BENCH_EXE`, else
//! `<CARGO_MANIFEST_DIR>/target/release/dyno`. Dynos run one at a time, each ended and forgotten
//! before the next; everything is cleaned up afterwards, on panic too.
//!
//! Knobs: `DYNO_BENCH_RUNS` (default 30), `DYNO_BENCH_WARMUP` (default 3),
//! `DYNO_BENCH_BUDGET_SECS` (default 180, stops measuring early when exceeded).

use anyhow::{bail, ensure, Context, Result};
use dyno::paths::Paths;
use dyno::runtime::{net, DynoHandle, DynoSpec, OutputLine, Runtime, DYNO_GID, DYNO_UID};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TARGET_MS: f64 = 30.0;
/// The daemon's default `DYNO_DISK_LIMIT` (2048 MB), given to the namespaced variant.
const DISK_LIMIT: u64 = 2048 << 20;
const PROFILE_VALUE: &str = "sourced-from-profile-d";
const UNSHARE_ARGS: &[&str] = &["--fork", "--pid", "--mount", "--uts", "--ipc"];
/// How long one dyno may take from start to fully cleaned up before it is stopped.
const DYNO_TIMEOUT: Duration = Duration::from_secs(20);

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as i128
}

fn ms_since(t0_ns: i128, t1_ns: i128) -> f64 {
    (t1_ns - t0_ns) as f64 / 1e6
}

fn dyno_exe() -> Result<PathBuf> {
    let exe = match std::env::var_os("DYNO_BENCH_EXE") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/dyno"),
    };
    exe.canonicalize().with_context(|| {
        format!(
            "dyno binary {} not found: run `cargo build --release` (or scripts/bench-start.sh)",
            exe.display()
        )
    })
}

fn chown_r(p: &Path) -> Result<()> {
    std::os::unix::fs::lchown(p, Some(DYNO_UID), Some(DYNO_GID))?;
    if p.is_dir() && !p.is_symlink() {
        for e in std::fs::read_dir(p)? {
            chown_r(&e?.path())?;
        }
    }
    Ok(())
}

/// A fake unpacked slug: `app/.profile.d/x.sh` exports a variable the command prints.
fn fake_slug(paths: &Paths) -> Result<PathBuf> {
    let slug = paths.slugs().join("bench");
    let app = slug.join("app");
    std::fs::create_dir_all(app.join(".profile.d"))?;
    let script = app.join(".profile.d/x.sh");
    std::fs::write(
        &script,
        format!("export DYNO_BENCH_PROFILE={PROFILE_VALUE}\n"),
    )?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644))?;
    chown_r(&app)?;
    Ok(slug)
}

/// The runtime plus every dyno started and not yet forgotten, for cleanup.
struct Bench {
    rt: Runtime,
    /// The same runtime with dyno networking (a network namespace, veth, routes, the router's
    /// port inside): the daemon's default.
    rt_net: Runtime,
    slug: PathBuf,
    live: Mutex<Vec<DynoHandle>>,
    n: Mutex<u32>,
}

impl Bench {
    fn spec(&self) -> DynoSpec {
        let n = {
            let mut n = self.n.lock().unwrap();
            *n += 1;
            *n
        };
        DynoSpec {
            id: format!("d{}-bench-web-{n}", self.rt.paths.instance),
            app: "bench".into(),
            name: format!("web.{n}"),
            // `date` first: its timestamp is the moment the command runs.
            command: "date +%s%N; echo \"profile=$DYNO_BENCH_PROFILE\"".into(),
            env: vec![
                ("DYNO".into(), format!("web.{n}")),
                ("PORT".into(), "5000".into()),
                ("HOME".into(), "/app".into()),
                ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ],
            slug_dir: self.slug.clone(),
            memory_limit: 256 << 20,
            pids_limit: 256,
            cpu_shares: 1024,
            stop_timeout_secs: 1,
            version: "bench".into(),
            network: None,
            disk_limit: None,
        }
    }

    /// Starts one dyno, waits for it to end (stopping it if it overruns), forgets it.
    /// Returns (start→command ms, start→`start()` returned ms).
    async fn one_dyno(&self, net: bool) -> Result<(f64, f64)> {
        let rt = if net { &self.rt_net } else { &self.rt };
        let mut spec = self.spec();
        if net {
            spec.disk_limit = Some(DISK_LIMIT);
        }
        let t0 = now_ns();
        let h = rt.start(spec).await.context("Runtime::start")?;
        let t_ret = now_ns();
        self.live.lock().unwrap().push(h.clone());
        let exit = match tokio::time::timeout(DYNO_TIMEOUT, self.rt.wait(&h)).await {
            Ok(r) => r?,
            Err(_) => {
                self.rt.stop(&h)?;
                tokio::time::timeout(Duration::from_secs(5), self.rt.wait(&h))
                    .await
                    .context("dyno did not end after stop")??;
                bail!("dyno {} did not end within {DYNO_TIMEOUT:?}", h.id);
            }
        };
        let spool = std::fs::read_to_string(Runtime::output_path(&h)).unwrap_or_default();
        let out: Vec<String> = spool
            .lines()
            .filter_map(|l| serde_json::from_str::<OutputLine>(l).ok())
            .filter(|l| l.stream == "out")
            .map(|l| l.line)
            .collect();
        self.rt.forget(&h)?;
        self.live.lock().unwrap().retain(|x| x.id != h.id);
        ensure!(exit.status == 0, "dyno exited {exit:?}; output {spool:?}");
        ensure!(
            out.len() == 2 && out[1] == format!("profile={PROFILE_VALUE}"),
            ".profile.d not sourced? output {out:?}"
        );
        let t_cmd: i128 = out[0].trim().parse().context("parsing date +%s%N")?;
        Ok((ms_since(t0, t_cmd), ms_since(t0, t_ret)))
    }

    /// Stops every dyno still known (ours, or any live shim of this DYNO_HOME) and removes
    /// all of their host state: mounts, cgroups, libcontainer state, state dirs.
    async fn cleanup(&self) {
        let mut handles: Vec<DynoHandle> = std::mem::take(&mut *self.live.lock().unwrap());
        if let Ok(adopted) = self.rt.adopt_or_clean() {
            for a in adopted {
                if !handles.iter().any(|h| h.id == a.id) {
                    handles.push(a);
                }
            }
        }
        for h in &handles {
            let _ = self.rt.stop(h);
            if tokio::time::timeout(Duration::from_secs(3), self.rt.wait(h))
                .await
                .is_err()
            {
                let _ = self.rt.kill(h);
                let _ = tokio::time::timeout(Duration::from_secs(3), self.rt.wait(h)).await;
            }
            let _ = self.rt.forget(h);
        }
        let _ = self.rt.adopt_or_clean();
    }
}

/// Mount points at or below `dir` (host mount namespace).
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| mp.starts_with(&*dir))
        .map(str::to_string)
        .collect()
}

/// `unshare … /bin/true`: spawn to exit, in ms.
fn unshare_true() -> Result<f64> {
    let t = Instant::now();
    let st = Command::new("unshare")
        .args(UNSHARE_ARGS)
        .arg("/bin/true")
        .stdin(Stdio::null())
        .status()
        .context("running unshare")?;
    ensure!(st.success(), "unshare /bin/true: {st}");
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

/// `unshare … bash -c 'date +%s%N'`: spawn to the command running, in ms.
fn unshare_bash() -> Result<f64> {
    let t0 = now_ns();
    let out = Command::new("unshare")
        .args(UNSHARE_ARGS)
        .args(["bash", "-c", "date +%s%N"])
        .stdin(Stdio::null())
        .output()
        .context("running unshare")?;
    ensure!(out.status.success(), "unshare bash: {}", out.status);
    let t1: i128 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("parsing date +%s%N")?;
    Ok(ms_since(t0, t1))
}

#[derive(Default)]
struct Samples {
    dyno: Vec<f64>,
    dyno_ret: Vec<f64>,
    dyno_net: Vec<f64>,
    unshare_true: Vec<f64>,
    unshare_bash: Vec<f64>,
}

async fn measure(
    bench: Arc<Bench>,
    runs: usize,
    warmup: usize,
    budget: Duration,
) -> Result<Samples> {
    let deadline = Instant::now() + budget;
    let mut s = Samples::default();
    for i in 0..warmup + runs {
        if Instant::now() > deadline {
            eprintln!(
                "time budget of {budget:?} exceeded: stopping after {} measured runs",
                s.dyno.len()
            );
            break;
        }
        let (d, r) = bench.one_dyno(false).await?;
        let (dn, _) = bench.one_dyno(true).await?;
        let ut = unshare_true()?;
        let ub = unshare_bash()?;
        if i >= warmup {
            s.dyno.push(d);
            s.dyno_ret.push(r);
            s.dyno_net.push(dn);
            s.unshare_true.push(ut);
            s.unshare_bash.push(ub);
        }
    }
    ensure!(!s.dyno.is_empty(), "no measured runs");
    Ok(s)
}

/// Linear-interpolated percentile of sorted `v`, `p` in [0, 1].
fn pct(v: &[f64], p: f64) -> f64 {
    let x = p * (v.len() - 1) as f64;
    let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (x - lo as f64)
}

struct Stats {
    median: f64,
    p90: f64,
    min: f64,
}

fn stats(v: &[f64]) -> Stats {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    Stats {
        median: pct(&v, 0.5),
        p90: pct(&v, 0.9),
        min: v[0],
    }
}

fn report(s: &Samples, exe: &Path, warmup: usize) {
    let d = stats(&s.dyno);
    let dn = stats(&s.dyno_net);
    let ut = stats(&s.unshare_true);
    let rows = [
        ("dyno (host network): start -> command", &d),
        ("dyno (own net ns + 2 GB disk): start -> cmd", &dn),
        (
            "dyno: Runtime::start -> start() returns",
            &stats(&s.dyno_ret),
        ),
        ("unshare /bin/true: spawn -> exit", &ut),
        (
            "unshare bash -c date: spawn -> command",
            &stats(&s.unshare_bash),
        ),
    ];
    println!();
    println!(
        "start latency, {} runs each (after {warmup} warm-ups), sequential; shim/init: {}",
        s.dyno.len(),
        exe.display()
    );
    println!("{:<42} {:>9} {:>9} {:>9}", "", "median", "p90", "min");
    for (name, st) in rows {
        println!(
            "{name:<42} {:>6.2} ms {:>6.2} ms {:>6.2} ms",
            st.median, st.p90, st.min
        );
    }
    let ub = stats(&s.unshare_bash);
    println!(
        "ratio dyno/unshare (median): {:.1}x vs /bin/true, {:.1}x vs bash -c date",
        d.median / ut.median,
        d.median / ub.median
    );
    let verdict = |x: f64| if x <= TARGET_MS { "met" } else { "NOT met" };
    println!(
        "the network namespace and the disk limit add {:.2} ms (median)",
        dn.median - d.median
    );
    println!(
        "target {TARGET_MS:.0} ms start -> command, network and disk included: median {:.2} ms {}, p90 {:.2} ms {}",
        dn.median,
        verdict(dn.median),
        dn.p90,
        verdict(dn.p90)
    );
}

fn main() -> Result<()> {
    // SAFETY: geteuid never fails.
    if !nix::unistd::geteuid().is_root() {
        eprintln!("start_latency: skipped, needs root (real containers)");
        return Ok(());
    }
    let exe = dyno_exe()?;
    let runs = env_num("DYNO_BENCH_RUNS", 30).max(1) as usize;
    let warmup = env_num("DYNO_BENCH_WARMUP", 3) as usize;
    let budget = Duration::from_secs(env_num("DYNO_BENCH_BUDGET_SECS", 180));

    let tmp = tempfile::Builder::new()
        .prefix("dyno-bench-start")
        .tempdir_in("/tmp")?;
    let paths = Paths::new(&tmp.path().join("home"))?;
    let rt = Runtime::new(&paths)?.with_exe(exe.clone());
    // A port for the router's listener inside each dyno (nobody serves it here).
    let router = std::net::TcpListener::bind("127.0.0.1:0")?;
    let base = net::parse_cidr(net::DEFAULT_NETWORK).expect("the default network");
    let network = net::Network::setup(&paths, base, Some(router.local_addr()?.port()))?;
    let rt_net = Runtime::new(&paths)?
        .with_exe(exe.clone())
        .with_network(network)
        .with_disks(dyno::runtime::disk::Pool::new(&paths.disks(), DISK_LIMIT)?);
    // The pool formats its first spares in the background: not part of any start.
    std::thread::sleep(Duration::from_millis(500));
    let slug = fake_slug(&paths)?;
    let bench = Arc::new(Bench {
        rt,
        rt_net,
        slug,
        live: Mutex::new(vec![]),
        n: Mutex::new(0),
    });

    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = tokio_rt.block_on(async {
        // The measurement runs in its own task so a panic in it still lets us clean up.
        let task = tokio::spawn(measure(bench.clone(), runs, warmup, budget));
        let abort = task.abort_handle();
        let res = tokio::select! {
            r = task => r,
            _ = tokio::signal::ctrl_c() => {
                abort.abort();
                eprintln!("interrupted: cleaning up");
                Ok(Err(anyhow::anyhow!("interrupted")))
            }
        };
        bench.cleanup().await;
        if let Some(p) = &bench.rt_net.disks {
            p.clean();
        }
        if let Some(n) = &bench.rt_net.net {
            if let Err(e) = n.teardown() {
                eprintln!("removing the bench's network: {e:#}");
            }
        }
        res
    });
    drop(tokio_rt);
    drop(bench);
    // Never recurse into a still-mounted overlay: keep the temp home if anything is left.
    let left = mounts_under(tmp.path());
    if left.is_empty() {
        drop(tmp);
    } else {
        let kept = tmp.keep();
        eprintln!("mounts left under {}: {left:?}; kept it", kept.display());
    }
    match result {
        Ok(Ok(samples)) => {
            report(&samples, &exe, warmup);
            Ok(())
        }
        Ok(Err(e)) => Err(e),
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(join) => bail!("bench task failed: {join}"),
    }
}

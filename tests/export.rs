//! `dyno export` end to end: a deployed app with a config var and `worker=1` exported to an OCI
//! archive and manifests; the image loaded into podman (and read by skopeo, an independent
//! client), the release command run with `podman run`, the app run with `podman kube play`; its
//! web answers with the config value from inside its container and its worker runs. The
//! manifests pass an offline schema check (kubernetes-validate from PyPI). Bad input changes
//! nothing.
//!
//! Shared between tests and runs, outside the clone: the stack layer
//! (`/var/cache/dyno-tests/stack`, `DYNO_STACK_CACHE` overrides) and kubernetes-validate's venv.
//! Needs Debian's `mmdebstrap`, `podman`, `runc`, `skopeo` (scripts/deps.sh).

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TEST_CACHE: &str = "/var/cache/dyno-tests";

fn stack_cache() -> String {
    std::env::var("DYNO_STACK_CACHE").unwrap_or_else(|_| format!("{TEST_CACHE}/stack"))
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_tree(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// podman as these machines need it (shared/notes/podman.md): runc, cgroupfs, explicit ulimits,
/// through a containers.conf of the test's own (the machine's config is left alone).
struct Podman {
    conf: PathBuf,
    /// Undone at drop, last first, whatever happened: `podman kube down`, `podman rmi`.
    cleanup: Vec<Vec<String>>,
}

impl Podman {
    fn new(dir: &Path) -> Podman {
        let conf = dir.join("containers.conf");
        std::fs::write(
            &conf,
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\",\"nproc=4096:4096\"]\n\
             [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n",
        )
        .unwrap();
        Podman {
            conf,
            cleanup: vec![],
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.args(args).env("CONTAINERS_CONF", &self.conf);
        c
    }

    /// Runs podman; (success, stdout + stderr).
    fn run(&self, args: &[&str]) -> (bool, String) {
        let o = self
            .cmd(args)
            .output()
            .expect("podman (apt-get install podman)");
        (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out) = self.run(args);
        assert!(ok, "podman {args:?} failed: {out}");
        out
    }

    fn on_drop(&mut self, args: &[&str]) {
        self.cleanup
            .push(args.iter().map(|s| s.to_string()).collect());
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for args in self.cleanup.iter().rev() {
            let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
            let _ = self.cmd(&args).output();
        }
    }
}

/// A Python venv kept outside the clone with kubernetes-validate (it bundles the schemas, so
/// the check is offline) and bcrypt (the registry's htpasswd), made on first use from PyPI.
fn venv() -> PathBuf {
    let venv = Path::new(TEST_CACHE).join("py");
    let ready = venv.join("bin/kubernetes-validate").exists()
        && Command::new(venv.join("bin/python"))
            .args(["-c", "import bcrypt"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    if !ready {
        let _ = std::fs::remove_dir_all(&venv);
        std::fs::create_dir_all(TEST_CACHE).unwrap();
        let ok = Command::new("/usr/bin/python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap()
            .success()
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "kubernetes-validate", "bcrypt"])
                .status()
                .unwrap()
                .success();
        assert!(
            ok,
            "could not install kubernetes-validate and bcrypt from PyPI"
        );
    }
    venv
}

/// A deployed app of `tests/fixtures/export-app` with GREETING set and `worker=1`.
fn deployed(env: &Env, name: &str, greeting: &str) -> PathBuf {
    let dir = env.home.parent().unwrap().join("src").join(name);
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/export-app"),
        &dir,
    );
    env.ok(&["up"], Some(&dir));
    env.ok(
        &["config:set", &format!("GREETING={greeting}"), "-a", name],
        None,
    );
    env.ok(&["ps:scale", "worker=1", "-a", name], None);
    // The config change's release phase runs before it becomes current.
    let current = wait_until(Duration::from_secs(60), || {
        env.json(&["releases", "-a", name, "--json"])
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["version"] == 2 && r["current"] == true)
    });
    assert!(current, "v2 never became current");
    dir
}

fn export(env: &Env, name: &str, out: &Path) -> String {
    let started = Instant::now();
    let o = env
        .cmd(&["export", "-a", name, "-o", &out.to_string_lossy()], None)
        .env("DYNO_STACK_CACHE", stack_cache())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "export failed: {stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!(
        "export took {:.1}s:\n{stdout}",
        started.elapsed().as_secs_f64()
    );
    stdout
}

#[test]
fn an_exported_release_runs_in_podman_with_its_config_and_worker() {
    let env = Env::new("export");
    let name = format!("exp{:06x}", rand_u32() & 0xffffff);
    let greeting = format!("hello-{:08x}", rand_u32());
    deployed(&env, &name, &greeting);
    // A scheduler job, to become a CronJob (attaching the scheduler makes v3).
    env.ok(&["addons:create", "scheduler", "-a", &name], None);
    env.ok(
        &[
            "cron:add",
            "*/10 * * * *",
            "-a",
            &name,
            "--",
            "echo",
            "digest",
        ],
        None,
    );
    let current = wait_until(Duration::from_secs(60), || {
        env.json(&["releases", "-a", &name, "--json"])
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["version"] == 3 && r["current"] == true)
    });
    assert!(current, "v3 never became current");
    let out = env.home.parent().unwrap().join("out");
    let printed = export(&env, &name, &out);
    let image = format!("localhost/{name}:v3");
    assert!(
        printed.contains(&format!("-----> Exporting {name} v3")),
        "{printed}"
    );
    assert!(printed.contains("stack layer"), "{printed}");
    for f in [
        "image.oci.tar",
        "kubernetes.yaml",
        "release.yaml",
        "podman/kube.yaml",
        "podman/configmap.yaml",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(
        !out.join(".dyno-export").exists(),
        "scratch space left behind"
    );

    // skopeo, an independent client, reads the archive: digest, labels, and no config var.
    let archive = format!("oci-archive:{}", out.join("image.oci.tar").display());
    let o = Command::new("skopeo")
        .args(["inspect", &archive])
        .output()
        .expect("skopeo (apt-get install skopeo)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let info: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["Labels"]["dyno.app"], name.as_str());
    assert_eq!(info["Labels"]["dyno.release"], "v3");
    let digest = info["Digest"].as_str().unwrap();
    assert!(
        printed.contains(digest),
        "skopeo's digest {digest} not in: {printed}"
    );
    let o = Command::new("skopeo")
        .args(["inspect", "--config", &archive])
        .output()
        .unwrap();
    let config = String::from_utf8_lossy(&o.stdout).into_owned();
    let cfg: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(cfg["config"]["User"], "47000:47000");
    assert!(cfg["config"]["Env"]
        .as_array()
        .unwrap()
        .contains(&Value::from("HOME=/app")));
    assert_eq!(cfg["config"]["Entrypoint"][0], "/.dyno/init");
    assert!(
        !config.contains(&greeting),
        "a config var baked into the image: {config}"
    );
    assert!(!config.contains("GREETING"), "{config}");
    let kube = std::fs::read_to_string(out.join("kubernetes.yaml")).unwrap();
    assert_eq!(
        kube.matches(&greeting).count(),
        1,
        "only in the Secret: {kube}"
    );

    // The job as a CronJob, in UTC, never overlapping (as the scheduler runs it).
    assert!(
        kube.contains("kind: CronJob")
            && kube.contains("*/10 * * * *")
            && kube.contains("echo digest"),
        "{kube}"
    );

    // Valid for Kubernetes 1.27 (the oldest the issue names), strictly: no unknown field.
    let validate = venv().join("bin/kubernetes-validate");
    for f in [
        "kubernetes.yaml",
        "release.yaml",
        "podman/kube.yaml",
        "podman/configmap.yaml",
    ] {
        let o = Command::new(&validate)
            .args(["-k", "1.27.0", "--strict"])
            .arg(out.join(f))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "{f} is not valid: {text}");
        assert!(
            !text.contains("WARN") && !text.contains("ERROR"),
            "{f}: {text}"
        );
    }

    let mut podman = Podman::new(env.home.parent().unwrap());
    podman.on_drop(&["rmi", "-f", &image]);
    let loaded = podman.ok(&["load", "-i", &out.join("image.oci.tar").to_string_lossy()]);
    assert!(loaded.contains(&image), "{loaded}");
    // Disk is shared: the archive's 276 MB are in podman's storage now.
    let _ = std::fs::remove_file(out.join("image.oci.tar"));

    // The release phase, as release.yaml's Job runs it: the image with the release command.
    let ran = podman.ok(&[
        "run",
        "--rm",
        "-e",
        &format!("GREETING={greeting}"),
        "-e",
        "HEROKU_RELEASE_VERSION=v2",
        &image,
        "python3 release.py",
    ]);
    assert!(
        ran.contains(&format!(
            "release phase ran: greeting={greeting} release=v2"
        )),
        "{ran}"
    );

    let kube_yaml = out.join("podman/kube.yaml").to_string_lossy().into_owned();
    podman.on_drop(&["kube", "down", &kube_yaml]);
    let played = podman.ok(&[
        "kube",
        "play",
        "--configmap",
        &out.join("podman/configmap.yaml").to_string_lossy(),
        &kube_yaml,
    ]);
    // podman 4.3 names a Deployment's pod `<name>-pod-0` and its containers
    // `<pod>-<container>`.
    let web = format!("{name}-web-pod-0-web");
    let worker = format!("{name}-worker-pod-0-worker");
    let get = "import urllib.request; \
               print(urllib.request.urlopen('http://127.0.0.1:5000/', timeout=5).read().decode())";
    let mut answer = String::new();
    let up = wait_until(Duration::from_secs(90), || {
        let (ok, out) = podman.run(&["exec", &web, "python3", "-c", get]);
        answer = out;
        ok
    });
    assert!(up, "the web never answered: {answer}\nplay: {played}");
    assert!(answer.contains(&format!("greeting={greeting}")), "{answer}");
    assert!(answer.contains("dyno=web.1 "), "{answer}");
    assert!(
        answer.contains("profile=sourced"),
        ".profile.d not sourced: {answer}"
    );
    assert!(answer.contains("user=47000 home=/app"), "{answer}");

    let mut beat = String::new();
    let runs = wait_until(Duration::from_secs(60), || {
        let (ok, out) = podman.run(&["exec", &worker, "cat", "/tmp/worker-beat"]);
        beat = out;
        ok && beat.contains(&format!("greeting={greeting}"))
    });
    assert!(runs, "the worker does not run: {beat}");
    let logs = podman.ok(&["logs", &worker]);
    assert!(logs.contains("worker beat"), "{logs}");
}

/// Debian's docker-registry on a free loopback port, with htpasswd auth; killed at drop.
struct Registry {
    child: std::process::Child,
    port: u16,
}

impl Registry {
    fn start(dir: &Path, user: &str, pass: &str) -> Registry {
        let py = venv().join("bin/python");
        let o = Command::new(py)
            .args([
                "-c",
                "import bcrypt,sys; print(sys.argv[1] + ':' + \
                 bcrypt.hashpw(sys.argv[2].encode(), bcrypt.gensalt(rounds=5)).decode())",
                user,
                pass,
            ])
            .output()
            .unwrap();
        assert!(o.status.success());
        std::fs::write(dir.join("htpasswd"), &o.stdout).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.join("registry.yml");
        std::fs::write(
            &conf,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: dyno-test\n    path: {}\n",
                dir.join("registry").display(),
                dir.join("htpasswd").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("registry.log")).unwrap())
            .spawn()
            .expect("docker-registry (apt-get install docker-registry)");
        let r = Registry { child, port };
        let up = wait_until(Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "the registry never listened");
        r
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn push_sends_the_image_to_a_loopback_registry_that_skopeo_reads_back() {
    let env = Env::new("export-push");
    let tmp = env.home.parent().unwrap().to_path_buf();
    let name = format!("exp{:06x}", rand_u32() & 0xffffff);
    let reg = Registry::start(&tmp, "ci", "s3cret");
    let repo = format!("127.0.0.1:{}/team/{name}", reg.port);

    // Bad input is refused before anything is written or sent.
    deployed(&env, &name, "pushed");
    let out = tmp.join("out");
    let out_s = out.to_string_lossy().into_owned();
    for (args, says) in [
        (vec!["--push", "myapp"], "no registry host"),
        (vec!["--push", "team/app:v1"], "registry host"),
        (vec!["--push", &repo, "--creds", "nocolon"], "USER:PASSWORD"),
        (vec!["--creds", "ci:s3cret"], "--creds is for --push"),
    ] {
        let mut a = vec!["export", "-a", &name, "-o", &out_s];
        a.extend(args.iter().copied());
        let err = env.fails(&a, None);
        assert!(err.contains(says), "{a:?}: {err}");
        assert!(!out.exists(), "{a:?} wrote {out_s}");
    }
    // Wrong or missing credentials: the registry's refusal, said plainly.
    let run = |target: &str, extra: &[&str], auth_file: Option<&Path>| {
        let mut a = vec!["export", "-a", &name, "-o", &out_s, "--push", target];
        a.extend(extra);
        let mut c = env.cmd(&a, None);
        c.env("DYNO_STACK_CACHE", stack_cache())
            .env_remove("REGISTRY_AUTH_FILE");
        if let Some(f) = auth_file {
            c.env("REGISTRY_AUTH_FILE", f);
        }
        c.output().unwrap()
    };
    let o = run(&repo, &["--creds", "ci:wrong"], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("refused these credentials"),
        "{err}"
    );
    let o = run(&repo, &[], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("wants credentials"),
        "{err}"
    );

    let o = run(&repo, &["--creds", "ci:s3cret"], None);
    let printed = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let digest = printed
        .lines()
        .find(|l| l.starts_with("-----> Pushing"))
        .and_then(|l| l.split("done, ").nth(1))
        .unwrap_or_else(|| panic!("no pushed digest in: {printed}"))
        .trim()
        .to_string();
    // The manifests run the pushed image.
    let kube = std::fs::read_to_string(out.join("kubernetes.yaml")).unwrap();
    assert!(kube.contains(&format!("image: {repo}:v2")), "{kube}");

    // skopeo, an independent client, reads the same digest from the registry.
    let inspect = |tag: &str| -> Value {
        let o = Command::new("skopeo")
            .args([
                "inspect",
                "--tls-verify=false",
                "--creds",
                "ci:s3cret",
                &format!("docker://{repo}:{tag}"),
            ])
            .output()
            .expect("skopeo");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let info = inspect("v2");
    assert_eq!(info["Digest"], digest.as_str(), "{printed}");
    assert_eq!(info["Labels"]["dyno.release"], "v2");
    // Every layer is there: skopeo pulls the whole image back, checking each blob's digest.
    let o = Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            "ci:s3cret",
            &format!("docker://{repo}:v2"),
            &format!("oci:{}:pulled", tmp.join("pulled").display()),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Disk is shared: neither copy is needed any more.
    let _ = std::fs::remove_dir_all(tmp.join("pulled"));
    let _ = std::fs::remove_file(out.join("image.oci.tar"));

    // REGISTRY_AUTH_FILE (containers-auth.json) instead of --creds; a tag of one's own. The
    // blobs are there already: only the manifest goes.
    let auth = tmp.join("auth.json");
    std::fs::write(
        &auth,
        format!(
            r#"{{"auths": {{"127.0.0.1:{}": {{"auth": "Y2k6czNjcmV0"}}}}}}"#,
            reg.port
        ),
    )
    .unwrap();
    let o = run(&format!("{repo}:stable"), &[], Some(&auth));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(inspect("stable")["Digest"], digest.as_str());
}

#[test]
fn bad_input_is_refused_and_writes_nothing() {
    let env = Env::new("export-bad");
    let tmp = env.home.parent().unwrap().to_path_buf();
    let out = tmp.join("out");
    let out_s = out.to_string_lossy().into_owned();
    let err = env.fails(&["export", "-a", "nosuchapp", "-o", &out_s], None);
    assert!(err.contains("Couldn't find that app"), "{err}");
    // An app with nothing deployed has no release to export.
    // (From a directory of its own: `apps:create` links the directory it runs in to the app.)
    let lonely = tmp.join("lonely");
    std::fs::create_dir_all(&lonely).unwrap();
    env.ok(&["apps:create", "empty"], Some(&lonely));
    let err = env.fails(&["export", "-a", "empty", "-o", &out_s], None);
    assert!(err.contains("no succeeded release"), "{err}");
    assert!(!out.exists());

    let name = format!("exp{:06x}", rand_u32() & 0xffffff);
    deployed(&env, &name, "bad");
    for (args, says) in [
        (vec!["--release", "v99"], "Couldn't find release v99"),
        (
            vec!["--release", "nonsense"],
            "Couldn't find release nonsense",
        ),
    ] {
        let mut a = vec!["export", "-a", &name, "-o", &out_s];
        a.extend(args.iter().copied());
        let err = env.fails(&a, None);
        assert!(err.contains(says), "{a:?}: {err}");
        assert!(!out.exists(), "{a:?} wrote {out_s}");
    }
    // A file where the output directory should go is left as it is.
    std::fs::write(&out, "mine").unwrap();
    let err = env.fails(&["export", "-a", &name, "-o", &out_s], None);
    assert!(err.contains("is not a directory"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "mine");
}

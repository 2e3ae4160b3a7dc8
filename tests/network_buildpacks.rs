//! Buildpacks from the network, served on this machine: git over HTTPS (`git http-backend`
//! behind a TLS server with a test CA the daemon trusts through `SSL_CERT_FILE`) and over HTTP,
//! at a tag, a branch and a commit; a `.tgz` over HTTPS; a server whose certificate no trusted
//! CA signed is refused; offline, a build uses the copy kept for that URL and ref, and a URL never
//! fetched fails naming it. No test touches the internet or the machine's trust store.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A CA and a certificate it signed for `localhost` and 127.0.0.1, as PEM files in `dir`.
fn make_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, format!("{name} test CA"));
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = p.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    p.subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    p.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
    let paths = (
        dir.join(format!("{name}-ca.pem")),
        dir.join(format!("{name}-cert.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

/// `serve.py` on `root`: HTTPS with `tls` (cert, key), else HTTP. Killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(root: &Path, tls: Option<(&Path, &Path)>) -> Server {
        let port_file = root.join(format!("port-{}", rand_u32()));
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gitserver/serve.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).arg(root).arg(&port_file);
        if let Some((cert, key)) = tls {
            cmd.arg(cert).arg(key);
        }
        let child = cmd.stdout(Stdio::null()).spawn().unwrap();
        let mut server = Server { child, port: 0 };
        assert!(
            wait_until(Duration::from_secs(20), || port_file.exists()),
            "the test git server did not start"
        );
        server.port = std::fs::read_to_string(&port_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@localhost")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@localhost")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A buildpack whose compile writes `version` into the app as `bp-version`.
fn write_buildpack(dir: &Path, version: &str) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let files = [
        ("detect", "#!/bin/sh\necho NetBP\n".to_string()),
        (
            "compile",
            format!(
                "#!/bin/sh\necho '-----> netbp {version}'\necho {version} > \"$1/bp-version\"\n"
            ),
        ),
    ];
    for (name, text) in files {
        let p = dir.join("bin").join(name);
        std::fs::write(&p, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// ROOT/bp.git (bare): tag v1, then main at v2, a branch beta at v3; returns v2's commit.
fn make_repo(root: &Path) -> String {
    let work = root.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    for (v, then) in [("v1", "tag"), ("v2", ""), ("v3", "beta")] {
        if then == "beta" {
            git(&work, &["checkout", "-q", "-b", "beta"]);
        }
        write_buildpack(&work, v);
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-qm", v]);
        if then == "tag" {
            git(&work, &["tag", "v1"]);
        }
    }
    git(&work, &["checkout", "-q", "main"]);
    let v2 = git(&work, &["rev-parse", "main"]);
    git(
        root,
        &["clone", "-q", "--bare", work.to_str().unwrap(), "bp.git"],
    );
    v2
}

/// Deploys `dir` as `app` with `buildpack`; returns (success, stdout + stderr).
fn deploy(env: &Env, app: &str, dir: &Path, buildpack: &str) -> (bool, String) {
    env.ok(&["buildpacks:set", buildpack, "-a", app], None);
    let o = env.run(&["up", "-a", app], Some(dir));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

fn bp_version(env: &Env, app: &str) -> String {
    env.ok(
        &["run", "-a", app, "--no-tty", "--", "cat", "bp-version"],
        None,
    )
    .trim()
    .to_string()
}

#[test]
fn git_and_tarball_buildpacks_over_https_and_http() {
    let env = Env::new("netbp");
    let root = env.home.parent().unwrap().join("served");
    std::fs::create_dir_all(&root).unwrap();
    let v2 = make_repo(&root);
    let (ca, cert, key) = make_ca(&root, "trusted");
    let (_, bad_cert, bad_key) = make_ca(&root, "untrusted");
    // A tarball of the buildpack as GitHub's archives are: one top directory.
    write_buildpack(&root.join("tar/netbp-4"), "v4");
    let st = Command::new("tar")
        .arg("-czf")
        .arg(root.join("netbp-4.tgz"))
        .arg("-C")
        .arg(root.join("tar"))
        .arg("netbp-4")
        .status()
        .unwrap();
    assert!(st.success());

    let https = Server::start(&root, Some((&cert, &key)));
    let http = Server::start(&root, None);
    let untrusted = Server::start(&root, Some((&bad_cert, &bad_key)));

    // The daemon trusts the test CA (this machine's environment sets GIT_SSL_CAINFO too).
    let o = env
        .cmd(&["apps:create", "netbp", "--no-remote"], None)
        .env("SSL_CERT_FILE", &ca)
        .env("GIT_SSL_CAINFO", &ca)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dir = env.app_dir("examples/hello", "netbp");
    let url = format!("https://localhost:{}/bp.git", https.port);

    // A tag, a branch, a commit, and the default branch.
    for (reference, want) in [
        ("#v1", "v1"),
        ("#beta", "v3"),
        (&format!("#{v2}")[..], "v2"),
        ("", "v2"),
    ] {
        let (ok, out) = deploy(&env, "netbp", &dir, &format!("{url}{reference}"));
        assert!(ok, "{url}{reference}: {out}");
        assert!(out.contains(&format!("netbp {want}")), "{out}");
        assert_eq!(bp_version(&env, "netbp"), want);
    }
    // `builds` shows what ran: the URL and the commit.
    let builds = env.json(&["builds", "-a", "netbp", "--json"]);
    let last = &builds[0]["buildpacks"][0]["url"];
    assert_eq!(
        last.as_str().unwrap(),
        format!("{url} (commit {})", &v2[..7]),
        "{builds}"
    );

    // Plain http, and a tarball over https.
    let (ok, out) = deploy(
        &env,
        "netbp",
        &dir,
        &format!("http://127.0.0.1:{}/bp.git#v1", http.port),
    );
    assert!(ok, "{out}");
    assert_eq!(bp_version(&env, "netbp"), "v1");
    let tgz = format!("https://localhost:{}/netbp-4.tgz", https.port);
    let (ok, out) = deploy(&env, "netbp", &dir, &tgz);
    assert!(ok, "{out}");
    assert_eq!(bp_version(&env, "netbp"), "v4");

    // The kept copies are root's alone, as everything in DYNO_HOME.
    let cache = env.home.join("buildpack-cache");
    let mut todo = vec![cache.clone()];
    while let Some(p) = todo.pop() {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(&p).unwrap();
        assert!(
            m.file_type().is_symlink() || m.mode() & 0o077 == 0,
            "{} is {:o}",
            p.display(),
            m.mode()
        );
        if m.is_dir() {
            todo.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }

    // A certificate no trusted CA signed: refused, nothing released.
    let releases = env
        .json(&["releases", "-a", "netbp", "--json"])
        .as_array()
        .unwrap()
        .len();
    let bad = format!("https://localhost:{}/bp.git#v1", untrusted.port);
    let (ok, out) = deploy(&env, "netbp", &dir, &bad);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("fetching buildpack {bad}")), "{out}");
    assert!(out.to_lowercase().contains("certificate"), "{out}");
    assert_eq!(
        env.json(&["releases", "-a", "netbp", "--json"])
            .as_array()
            .unwrap()
            .len(),
        releases
    );
    assert_eq!(bp_version(&env, "netbp"), "v4");

    // Offline: a URL and ref fetched before builds from its kept copy, with a warning; one
    // never fetched fails naming its URL.
    let port = https.port;
    drop(https);
    let (ok, out) = deploy(&env, "netbp", &dir, &format!("{url}#v1"));
    assert!(ok, "{out}");
    assert!(
        out.contains("using the copy an earlier build fetched"),
        "{out}"
    );
    assert_eq!(bp_version(&env, "netbp"), "v1");
    let never = format!("https://localhost:{port}/other.git");
    let (ok, out) = deploy(&env, "netbp", &dir, &never);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("fetching buildpack {never}")),
        "{out}"
    );
}

#[test]
fn official_urls_are_the_shipped_buildpacks_only_without_a_ref() {
    let env = Env::new("officialbp");
    env.ok(&["apps:create", "official", "--no-remote"], None);
    // Refused when set, nothing changed: a version of a shipped buildpack, a tarball's #ref.
    for bad in ["heroku/nodejs#v250", "https://example.com/bp.tgz#v1"] {
        let err = env.fails(&["buildpacks:set", bad, "-a", "official"], None);
        assert!(err.contains(bad), "{err}");
    }
    assert_eq!(
        env.json(&["buildpacks", "-a", "official", "--json"]),
        serde_json::json!([])
    );
    let dir = env.app_dir("examples/hello", "official");
    std::fs::write(dir.join("requirements.txt"), "").unwrap();
    let (ok, out) = deploy(
        &env,
        "official",
        &dir,
        "https://github.com/heroku/heroku-buildpack-python",
    );
    assert!(ok, "{out}");
    // No network needed: dyno's own python ran, and `builds` says so.
    let builds = env.json(&["builds", "-a", "official", "--json"]);
    let ran = &builds[0]["buildpacks"][0]["url"];
    assert_eq!(
        ran.as_str().unwrap(),
        "https://github.com/heroku/heroku-buildpack-python (dyno's shipped python)",
        "{builds}"
    );
}

#[test]
fn builds_see_the_ca_bundle_and_the_host_files_their_config_names() {
    let env = Env::new("hostfiles");
    let root = env.home.parent().unwrap().join("shared");
    std::fs::create_dir_all(&root).unwrap();
    let (ca, cert, _) = make_ca(&root, "builds");
    // A buildpack that reads what the official nodejs buildpack reads: NODE_BINARY_URL from
    // ENV_DIR, fetched with curl; and checks a certificate against the bundle it was given.
    let bp = root.join("bp");
    std::fs::create_dir_all(bp.join("bin")).unwrap();
    std::fs::write(bp.join("bin/detect"), "#!/bin/sh\necho HostFiles\n").unwrap();
    std::fs::write(
        bp.join("bin/compile"),
        r#"#!/bin/sh
echo "vars: $SSL_CERT_FILE $NODE_EXTRA_CA_CERTS $REQUESTS_CA_BUNDLE $GIT_SSL_CAINFO"
openssl verify -CAfile "$SSL_CERT_FILE" "$1/server.pem" >/dev/null && echo "server certificate trusted"
url=$(cat "$3/NODE_BINARY_URL")
echo "binary: $(curl -fsS "$url")"
"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    for f in ["detect", "compile"] {
        std::fs::set_permissions(
            bp.join("bin").join(f),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    let binary = root.join("node-v1.tgz");
    std::fs::write(&binary, "the node binary").unwrap();
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o644)).unwrap();
    let secret = root.join("secret.tgz");
    std::fs::write(&secret, "root's alone").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();

    let o = env
        .cmd(&["apps:create", "hostfiles", "--no-remote"], None)
        .env("SSL_CERT_FILE", &ca)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dir = env.app_dir("examples/hello", "hostfiles");
    std::fs::copy(&cert, dir.join("server.pem")).unwrap();
    let url = format!("file://{}", binary.display());
    env.ok(
        &[
            "config:set",
            &format!("NODE_BINARY_URL={url}"),
            "-a",
            "hostfiles",
        ],
        None,
    );
    let (ok, out) = deploy(&env, "hostfiles", &dir, bp.to_str().unwrap());
    assert!(ok, "{out}");
    let file = "/tmp/ca/ca-certificates.crt";
    assert!(
        out.contains(&format!("vars: {file} {file} {file} {file}")),
        "{out}"
    );
    assert!(out.contains("server certificate trusted"), "{out}");
    assert!(out.contains("binary: the node binary"), "{out}");

    // A file the dyno user cannot read: refused, saying why; nothing released.
    let releases = env.json(&["releases", "-a", "hostfiles", "--json"]);
    let bad = format!("file://{}", secret.display());
    env.ok(
        &[
            "config:set",
            &format!("NODE_BINARY_URL={bad}"),
            "-a",
            "hostfiles",
        ],
        None,
    );
    let o = env.run(&["up", "-a", "hostfiles"], Some(&dir));
    let out = String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains(&format!("config var NODE_BINARY_URL names {bad}"))
            && out.contains("the dyno user (uid 47000) cannot read"),
        "{out}"
    );
    assert_eq!(
        env.json(&["releases", "-a", "hostfiles", "--json"])
            .as_array()
            .unwrap()
            .len(),
        releases.as_array().unwrap().len() + 1, // the config:set's release only
    );
}

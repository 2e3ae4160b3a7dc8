//! HTTPS as a first-time user meets it: an app that forces HTTPS ends on its page from the
//! printed http URL (the router's HTTP port answers TLS too), and `certs:trust`/`certs:untrust`
//! put the local CA into and out of the system store and a browser's NSS database — tested in a
//! private mount namespace over
//! copies of `/etc/ssl` and `/usr/local/share/ca-certificates`, so the machine's trust store is
//! never changed.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Output};

/// Starts this home's daemon with an HTTPS listener on a free port.
fn start(env: &Env, app: &str) {
    let o = env
        .cmd(&["apps:create", app, "--no-remote"], None)
        .env("DYNO_HTTPS_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn curl(args: &[&str]) -> String {
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "60", "--connect-to", "::127.0.0.1:"])
        .args(args)
        .output()
        .unwrap();
    text(&o)
}

#[test]
fn an_app_forcing_https_ends_on_its_page_from_the_printed_http_url() {
    let env = Env::new("forcehttps");
    start(&env, "secure");
    let dir = env.app_dir("tests/fixtures/forcehttps", "secure");
    let out = env.ok(&["up", "-a", "secure"], Some(&dir));
    let port = env.router_port();
    let url = format!("http://secure.localhost:{port}/");
    assert!(out.contains(&url), "{out}");
    let ca = env.json(&["certs", "--json"])["ca_cert_path"]
        .as_str()
        .unwrap()
        .to_string();

    // Plain HTTP: the app's redirect to https on the same host and port.
    let got = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        &url,
    ]);
    assert_eq!(got, format!("301 https://secure.localhost:{port}/"));
    // Followed: TLS on the HTTP port, the page, with the local CA given to curl.
    let got = curl(&[
        "-L",
        "--cacert",
        &ca,
        "-w",
        "%{http_code} %{url_effective}",
        &url,
    ]);
    assert_eq!(
        got,
        format!("the secure page\n200 https://secure.localhost:{port}/")
    );
    let logs = env.logs("secure");
    assert!(
        logs.contains("status=301") && logs.contains("protocol=https"),
        "{logs}"
    );
    // Without the CA, curl refuses the certificate: nothing is trusted by accident.
    let got = curl(&["-L", &url]);
    assert!(got.to_lowercase().contains("certificate"), "{got}");
}

/// Runs `dyno ARGS` (or a command) in a private mount namespace whose /etc/ssl and
/// /usr/local/share/ca-certificates are the copies in `store`.
fn in_private_store(env: &Env, store: &Path, program: &[&str], cwd: Option<&Path>) -> Output {
    let c = env.cmd(&[], cwd);
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount --bind \"$1/ssl\" /etc/ssl && \
             mount --bind \"$1/local\" /usr/local/share/ca-certificates && \
             shift && exec \"$@\"",
        )
        .arg("sh")
        .arg(store)
        .args(program);
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    if let Some(d) = c.get_current_dir() {
        cmd.current_dir(d);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn certs_trust_and_untrust_change_a_private_trust_store_only() {
    let env = Env::new("certstrust");
    start(&env, "trusted");
    let machine_bundle = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap();
    let store = env.home.parent().unwrap().join("store");
    std::fs::create_dir_all(&store).unwrap();
    for (from, to) in [
        ("/etc/ssl", "ssl"),
        ("/usr/local/share/ca-certificates", "local"),
    ] {
        let st = Command::new("cp")
            .args(["-a", from])
            .arg(store.join(to))
            .status()
            .unwrap();
        assert!(st.success());
    }
    let ca_pem = env.json(&["certs", "--json"])["ca_cert_pem"]
        .as_str()
        .unwrap()
        .to_string();
    let body: String = ca_pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let holds = |bundle: &Path| {
        std::fs::read_to_string(bundle)
            .unwrap()
            .lines()
            .collect::<String>()
            .contains(&body)
    };
    let bundle = store.join("ssl/certs/ca-certificates.crt");
    assert!(!holds(&bundle));
    let dyno = common::BIN;
    let dir = env.app_dir("examples/hello", "trusted");

    // Untrusted: `up` prints the http URL only.
    let o = in_private_store(&env, &store, &[dyno, "up", "-a", "trusted"], Some(&dir));
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("https://"), "{}", text(&o));

    // A browser's NSS database in the (test's own) HOME of the user running certs:trust (not
    // SUDO_USER's: the test never touches a real user's databases).
    let user_home = store.join("home");
    let nssdb = user_home.join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb).unwrap();
    let db = format!("sql:{}", nssdb.display());
    let certutil = |args: &[&str]| {
        Command::new("certutil")
            .args(args)
            .args(["-d", &db])
            .output()
            .unwrap()
    };
    assert!(certutil(&["-N", "--empty-password"]).status.success());
    let nickname = format!("dyno local CA {}", env.instance);
    let home_var = format!("HOME={}", user_home.display());

    let o = in_private_store(
        &env,
        &store,
        &["env", "-u", "SUDO_USER", &home_var, dyno, "certs:trust"],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("NSS databases (added)"), "{}", text(&o));
    assert!(certutil(&["-L", "-n", &nickname]).status.success());
    assert!(store
        .join(format!("local/dyno-local-ca-{}.crt", env.instance))
        .exists());
    assert!(holds(&bundle));

    // Trusted: `up` prints the https URL too, and curl with the (private) system store takes it.
    let o = in_private_store(&env, &store, &[dyno, "up", "-a", "trusted"], Some(&dir));
    assert!(o.status.success(), "{}", text(&o));
    let https_port = env.json(&["certs", "--json"])["https_addr"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let https = format!("https://trusted.localhost:{https_port}/");
    assert!(text(&o).contains(&https), "{}", text(&o));
    let o = in_private_store(
        &env,
        &store,
        &["curl", "-sS", "--connect-to", "::127.0.0.1:", &https],
        None,
    );
    assert_eq!(text(&o), "Hello from web.1\n");

    let o = in_private_store(
        &env,
        &store,
        &["env", "-u", "SUDO_USER", &home_var, dyno, "certs:untrust"],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!certutil(&["-L", "-n", &nickname]).status.success());
    assert!(!store
        .join(format!("local/dyno-local-ca-{}.crt", env.instance))
        .exists());
    assert!(!holds(&bundle));
    // Twice is fine.
    let o = in_private_store(&env, &store, &[dyno, "certs:untrust"], None);
    assert!(o.status.success(), "{}", text(&o));

    // The machine's own store never changed.
    assert_eq!(
        std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap(),
        machine_bundle
    );
    assert!(!Path::new(&format!(
        "/usr/local/share/ca-certificates/dyno-local-ca-{}.crt",
        env.instance
    ))
    .exists());
}

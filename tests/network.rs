//! Dyno networking, with real containers: what a dyno can reach (each refusal beside a control
//! that shows the target does answer), apps calling apps through the router, outbound NAT, the
//! router's port out of a dyno's reach, parallel homes, teardown.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Runs probe.py in a one-off dyno of `app` and returns its answers.
fn probe(env: &Env, app: &str, checks: Value) -> Value {
    let out = env.ok(
        &[
            "run",
            "-a",
            app,
            "--no-tty",
            "--",
            &format!("python3 probe.py '{checks}'"),
        ],
        None,
    );
    let line = out.lines().rev().find(|l| l.starts_with('{')).unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("probe output {out:?}: {e}"))
}

/// The host's first global IPv4 address that is no bridge of ours.
fn host_address() -> Option<Ipv4Addr> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let dev = f.nth(1)?;
        if dev.starts_with("dyno") || dev.starts_with("dt") {
            return None;
        }
        f.nth(1)?.split('/').next()?.parse().ok()
    })
}

fn gateway_of(env: &Env) -> Ipv4Addr {
    let out = Command::new("ip")
        .args([
            "-4",
            "-o",
            "addr",
            "show",
            "dev",
            &format!("dyno{}", env.instance),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address on the bridge: {text}"))
}

/// A listener on the host's 0.0.0.0 that answers `host` to whoever connects.
fn host_listener() -> u16 {
    let l = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let _ = c.write_all(b"host\n");
        }
    });
    port
}

/// An HTTP server in a network namespace of its own, behind a veth from the host: "outside".
struct Outside {
    ns: String,
    veth: String,
    server: Child,
    addr: SocketAddr,
}

impl Outside {
    fn start() -> Outside {
        let r = rand_u32();
        let ns = format!("dynotest{r:08x}");
        let veth = format!("dt{:06x}", r & 0xffffff);
        let peer = format!("dp{:06x}", r & 0xffffff);
        let net = format!("198.18.{}", r % 250);
        let ip = |args: &[&str]| {
            let st = Command::new("ip").args(args).status().unwrap();
            assert!(st.success(), "ip {args:?}");
        };
        ip(&["netns", "add", &ns]);
        let outside = Outside {
            ns: ns.clone(),
            veth: veth.clone(),
            server: Command::new("true").spawn().unwrap(),
            addr: format!("{net}.2:8000").parse().unwrap(),
        };
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", &peer, "netns", &ns,
        ]);
        ip(&["addr", "add", &format!("{net}.1/30"), "dev", &veth]);
        ip(&["link", "set", &veth, "up"]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{net}.2/30"),
            "dev",
            &peer,
        ]);
        ip(&["-n", &ns, "link", "set", &peer, "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        let server = Command::new("ip")
            .args(["netns", "exec", &ns, "python3", "-c"])
            .arg(
                "import http.server as h\n\
                 class H(h.BaseHTTPRequestHandler):\n\
                 \x20def do_GET(s):\n\
                 \x20 b=('outside, from '+s.client_address[0]).encode()\n\
                 \x20 s.send_response(200); s.send_header('Content-Length',str(len(b))); s.end_headers(); s.wfile.write(b)\n\
                 \x20def log_message(s,*a): pass\n\
                 h.HTTPServer(('0.0.0.0',8000),H).serve_forever()\n",
            )
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut outside = outside;
        outside.server = server;
        let addr = outside.addr;
        assert!(
            wait_until(Duration::from_secs(10), || TcpStream::connect_timeout(
                &addr,
                Duration::from_millis(500)
            )
            .is_ok()),
            "the outside server did not start"
        );
        outside
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

#[test]
fn a_dyno_reaches_the_router_and_the_outside_only() {
    let env = Env::new("net");
    let a = env.app_dir("tests/fixtures/netprobe", "neta");
    let b = env.app_dir("tests/fixtures/netprobe", "netb");
    env.ok(&["up"], Some(&a));
    env.ok(&["up"], Some(&b));
    let port = env.router_port();
    let gw = gateway_of(&env);
    let b_web = env.wait_dynos_up("netb", &["web.1"]);
    let b_addr = env.dyno_addr(&b_web[0]);
    assert!(b_addr.ip().to_string().starts_with("10."), "{b_addr}");

    // Controls: the host listener answers the host, app B answers through the router, the
    // outside server answers the host.
    let hp = host_listener();
    let mut s = TcpStream::connect(("127.0.0.1", hp)).unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert_eq!(got, "host\n");
    let ext = host_address();
    if let Some(ext) = ext {
        assert!(TcpStream::connect((ext, hp)).is_ok(), "control: {ext}:{hp}");
    }
    assert_eq!(
        http_get(port, "netb.localhost", "/"),
        (200, "netb web.1".into())
    );
    assert_eq!(
        http_get_at(b_addr, "x", "/").0,
        200,
        "control: B's own address from the host"
    );
    let outside = Outside::start();
    assert!(http_get_at(outside.addr, "x", "/").1.starts_with("outside"));

    let mut checks = json!({
        "host_gateway": ["tcp", gw.to_string(), hp],
        "host_loopback": ["tcp", "127.0.0.1", hp],
        "b_direct": ["tcp", b_addr.ip().to_string(), b_addr.port()],
        "metadata": ["tcp", "169.254.169.254", 80],
        "b_by_router_port": ["get", format!("http://127.0.0.1:{port}/"), "netb.localhost"],
        "b_by_name": ["get", format!("http://netb.localhost:{port}/"), null],
        "outside": ["get", format!("http://{}/", outside.addr), null],
    });
    if let Some(ext) = ext {
        checks["host_external"] = json!(["tcp", ext.to_string(), hp]);
    }
    let got = probe(&env, "neta", checks);
    for refused in [
        "host_gateway",
        "host_loopback",
        "b_direct",
        "metadata",
        "host_external",
    ] {
        if let Some(v) = got.get(refused) {
            assert_ne!(v, "open", "{refused} must be out of reach: {got}");
        }
    }
    assert_eq!(got["b_by_router_port"], "netb web.1", "{got}");
    assert_eq!(got["b_by_name"], "netb web.1", "{got}");
    // Through the NAT: the outside sees the host's address on its link, not the dyno's.
    let seen = got["outside"].as_str().unwrap_or_default();
    assert!(seen.starts_with("outside, from 198.18."), "{got}");

    // A port bound inside a dyno is bound there only: the same port is free on the host.
    let bport = b_addr.port();
    assert!(
        TcpListener::bind(("127.0.0.1", bport)).is_ok(),
        "B's $PORT {bport} is taken on the host"
    );

    // Teardown leaves no link, namespace or rule of this home.
    env.ok(&["apps:destroy", "-a", "neta", "--confirm", "neta"], None);
    env.ok(&["apps:destroy", "-a", "netb", "--confirm", "netb"], None);
    env.assert_nothing_left("apps:destroy");
    env.ok(&["daemon:stop"], None);
    assert!(env.links().is_empty(), "links left: {:?}", env.links());
    assert!(!env.has_nft_table(), "the firewall table is left");
}

/// A free port on loopback, for a router that must come back on the same one.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `dyno ARGS` with the router on `port` and `DYNO_NETWORK=network`, asserting success;
/// returns stdout.
fn dyno_at(
    env: &Env,
    port: u16,
    network: &str,
    args: &[&str],
    cwd: Option<&std::path::Path>,
) -> String {
    let o = env
        .cmd(args, cwd)
        .env("DYNO_ROUTER_ADDR", format!("127.0.0.1:{port}"))
        .env("DYNO_NETWORK", network)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "dyno {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_dyno_never_gets_the_routers_port() {
    let env = Env::new("squat");
    // A fixed router port: the restarted daemon must get the same one back.
    let port = free_port();
    let dyno = |args: &[&str], cwd: Option<&std::path::Path>| {
        dyno_at(&env, port, dyno::runtime::net::DEFAULT_NETWORK, args, cwd)
    };
    let dir = env.app_dir("tests/fixtures/netprobe", "squat");
    dyno(&["apps:create", "squat"], None);
    dyno(
        &["config:set", &format!("ROUTER_PORT={port}"), "-a", "squat"],
        None,
    );
    dyno(&["up"], Some(&dir));
    dyno(&["ps:scale", "-a", "squat", "squat=1"], None);
    let squatting = wait_until(Duration::from_secs(20), || {
        env.logs("squat").contains("app[squat.1]: bind")
    });
    assert!(squatting, "the squatter never tried: {}", env.logs("squat"));

    let pid = env.daemon_pid().expect("daemon pid");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(wait_until(Duration::from_secs(10), || {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err()
    }));
    // The squatter keeps trying while no daemon runs.
    std::thread::sleep(Duration::from_millis(1500));

    // The next command starts a daemon, which gets its port back and routes as before.
    dyno(&["ps", "-a", "squat"], None);
    let body = wait_until(Duration::from_secs(20), || {
        http_get(port, "squat.localhost", "/") == (200, "squat web.1".into())
    });
    assert!(body, "{:?}", http_get(port, "squat.localhost", "/"));
    let logs = env.logs("squat");
    assert!(!logs.contains("STOLEN"), "{logs}");
    dyno(&["daemon:stop"], None);
}

#[test]
fn parallel_homes_get_their_own_subnets() {
    let envs: Vec<Env> = (0..3).map(|i| Env::new(&format!("par{i}"))).collect();
    let handles: Vec<_> = envs
        .iter()
        .map(|env| env.cmd(&["apps:create", "par"], None).spawn().unwrap())
        .collect();
    for mut h in handles {
        assert!(h.wait().unwrap().success());
    }
    let gws: Vec<Ipv4Addr> = envs.iter().map(gateway_of).collect();
    let nets: std::collections::HashSet<[u8; 3]> = gws
        .iter()
        .map(|g| {
            let o = g.octets();
            [o[0], o[1], o[2]]
        })
        .collect();
    assert_eq!(nets.len(), 3, "subnets shared: {gws:?}");
    // Each serves its own app; stopping one leaves the others' networks alone.
    let dir = envs[0].app_dir("tests/fixtures/netprobe", "par");
    envs[0].ok(&["up"], Some(&dir));
    envs[1].ok(&["daemon:stop"], None);
    assert!(envs[1].links().is_empty());
    assert_eq!(
        http_get(envs[0].router_port(), "par.localhost", "/"),
        (200, "par web.1".into())
    );
    assert_eq!(gateway_of(&envs[2]), gws[2]);
}

/// Whether a dyno runs in a network namespace (false also when it is already gone).
fn namespaced(env: &Env, dyno: &Value) -> bool {
    let id = dyno["id"].as_str().unwrap_or_default();
    std::fs::read(env.home.join("run/dynos").join(id).join("spec.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .is_some_and(|s| s["network"].is_object())
}

#[test]
fn an_upgrade_from_the_host_network_keeps_serving() {
    let env = Env::new("upgrade");
    let port = free_port();
    // `host`: dynos on the host's network, as a daemon before dyno networking ran them.
    let dyno = |args: &[&str], cwd: Option<&std::path::Path>, network: &str| {
        dyno_at(&env, port, network, args, cwd)
    };
    let dir = env.app_dir("tests/fixtures/netprobe", "old");
    dyno(&["up"], Some(&dir), "host");
    dyno(&["ps:scale", "-a", "old", "web=2"], None, "host");
    let before = env.wait_dynos_up("old", &["web.1", "web.2"]);
    for d in &before {
        assert!(env.dyno_addr(d).ip().is_loopback(), "{d}");
    }
    dyno(&["daemon:stop", "--keep-dynos"], None, "host");

    // The new daemon adopts them, serves them at 127.0.0.1:port, then moves them one by one.
    dyno(&["ps", "-a", "old"], None, "10.231.0.0/16");
    let mut served = 0;
    let moved = wait_until(Duration::from_secs(90), || {
        let (status, body) = http_get(port, "old.localhost", "/");
        assert_eq!(status, 200, "a request failed during the move: {body}");
        served += 1;
        let dynos = env.dynos("old");
        dynos.len() == 2
            && dynos
                .iter()
                .all(|d| d["state"] == "up" && namespaced(&env, d))
    });
    assert!(moved, "not moved: {:#?}", env.dynos("old"));
    assert!(served > 1);
    let after = env.dynos("old");
    for n in ["web.1", "web.2"] {
        assert!(after.iter().any(|d| d["name"] == n), "{after:#?}");
    }
    dyno(&["daemon:stop"], None, "10.231.0.0/16");
    env.assert_nothing_left("daemon:stop");
    assert!(env.links().is_empty(), "{:?}", env.links());
}

#[test]
fn a_bad_dyno_network_is_refused_clearly() {
    let env = Env::new("badnet");
    for bad in ["banana", "10.0.0.0/25", "10.0.0.0/99", "300.1.2.0/16"] {
        let o = env
            .cmd(&["apps"], None)
            .env("DYNO_NETWORK", bad)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{bad}: {err}");
        assert!(
            err.contains("DYNO_NETWORK") && err.contains(bad),
            "{bad}: {err}"
        );
    }
    assert!(env.links().is_empty(), "{:?}", env.links());
}

//! Dyno networking: every dyno (and build container) gets a network namespace of its own, wired
//! by a veth pair to a bridge owned by this `DYNO_HOME`.
//!
//! - One /24 per `DYNO_HOME`, carved from `DYNO_NETWORK` (default [`DEFAULT_NETWORK`]) starting
//!   at a slot picked by the instance id, skipping subnets already routed on the host (other
//!   homes' bridges included), the resolvers' addresses and podman's 10.88.0.0/16. The choice
//!   happens under a host-wide lock, so parallel daemons never share a subnet.
//! - The bridge `dyno<instance>` holds the gateway (`.1/32`); a dyno gets `.N/32`, an on-link
//!   route to the gateway and a default route through it; the host a `.N/32` route through the
//!   bridge while the dyno lives, and the rest of the /24 is `unreachable` (a connect to a gone
//!   dyno fails at once instead of waiting for ARP). Its host-side veth `dv<instance><N hex>` is
//!   an isolated bridge port: no frame goes from one dyno to another (no br_netfilter needed).
//! - One nftables table `inet dyno_<instance>` matches only this bridge: to the host, a dyno
//!   reaches the ports registered with [`Network::allow_service`] on the gateway address (and
//!   replies); nothing else. No forwarding between dynos or to other homes, nor to
//!   169.254.0.0/16. Outbound traffic is masqueraded. No policy is set on a shared hook.
//! - Inside, `127.0.0.1:<router port>` is a listener the shim opens in the dyno's namespace and
//!   the daemon serves with the router (taken from the shim with pidfd_getfd): apps call apps as
//!   on the host, and no dyno can ever hold the router's port. `/etc/hosts` lists every app's
//!   `<app>.localhost`; `/etc/resolv.conf` names the host's resolvers, or systemd-resolved's
//!   upstream servers when the host's point at a loopback stub.
//!
//! Configuration goes through netlink ([`super::netlink`]), never `ip`; the ruleset through one
//! `nft -f -` per daemon start (and per registered service).

use super::netlink::Netlink;
use crate::paths::Paths;
use anyhow::{anyhow, bail, Context, Result};
use netlink_packet_route::route::RouteType;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where the /24s of every `DYNO_HOME` come from unless `DYNO_NETWORK` says otherwise.
pub const DEFAULT_NETWORK: &str = "10.231.0.0/16";
/// Held while a daemon picks its subnet and creates its bridge.
const HOST_LOCK: &str = "/run/dyno-network.lock";
/// podman's default network: never used, even when no route shows it yet.
const PODMAN: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 88, 0, 0), 16);

/// The network of one dyno, in its spec. Absent for dynos of an older version (host network).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynoNet {
    pub bridge: String,
    /// Host-side veth name (the dyno's side is `eth0`).
    pub veth: String,
    pub address: Ipv4Addr,
    pub gateway: Ipv4Addr,
    /// The router's port, opened at 127.0.0.1 inside the dyno (none for build containers).
    pub router_port: Option<u16>,
    /// Bound at /etc/hosts and /etc/resolv.conf.
    pub hosts: PathBuf,
    pub resolv: PathBuf,
    /// Locked by the shim from before it wires the network until it has torn it down: the
    /// address is not handed out again before (the veth alone vanishes as soon as the
    /// namespace dies, while the old shim still has to delete its route).
    #[serde(default)]
    pub lease: PathBuf,
}

/// This `DYNO_HOME`'s network: its bridge, subnet and firewall table.
pub struct Network {
    pub bridge: String,
    /// The /24's network address.
    pub subnet: Ipv4Addr,
    pub gateway: Ipv4Addr,
    router_port: Option<u16>,
    instance: String,
    dir: PathBuf,
    /// Dyno addresses handed out whose veth may not exist yet (last octet).
    pending: Arc<Mutex<HashSet<u8>>>,
    services: Mutex<BTreeSet<u16>>,
}

/// Keeps a dyno's address reserved until its veth exists.
pub struct Reservation(Arc<Mutex<HashSet<u8>>>, u8);

impl Drop for Reservation {
    fn drop(&mut self) {
        self.0.lock().unwrap().remove(&self.1);
    }
}

pub fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, l) = s.split_once('/')?;
    let a: Ipv4Addr = a.parse().ok()?;
    let l: u8 = l.parse().ok().filter(|l| *l <= 32)?;
    Some((Ipv4Addr::from(u32::from(a) & mask(l)), l))
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len)
    }
}

fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let m = mask(a.1.min(b.1));
    u32::from(a.0) & m == u32::from(b.0) & m
}

/// The /24 for this instance: the first free one from the instance's own slot on.
pub fn choose_subnet(
    base: (Ipv4Addr, u8),
    instance: &str,
    taken: &[(Ipv4Addr, u8)],
) -> Option<Ipv4Addr> {
    let slots = 1u32 << (24 - base.1);
    let start = u32::from_str_radix(instance.get(..8).unwrap_or("0"), 16).unwrap_or(0) % slots;
    (0..slots)
        .map(|i| Ipv4Addr::from(u32::from(base.0) + (((start + i) % slots) << 8)))
        .find(|net| !taken.iter().any(|t| overlaps((*net, 24), *t)))
}

/// Nameservers of a resolv.conf text.
fn nameservers(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The resolv.conf dynos get: the host's, with a loopback stub (systemd-resolved's 127.0.0.53)
/// replaced by its upstream servers, which a dyno can reach through the NAT.
pub fn dyno_resolv_conf(host: &str, upstream: Option<&str>) -> String {
    let is_loopback = |s: &str| s.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback());
    let servers = nameservers(host);
    if !servers.iter().any(|s| is_loopback(s)) {
        return host.to_string();
    }
    let mut out: String = host
        .lines()
        .filter(|l| !l.trim().starts_with("nameserver"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut up: Vec<String> = servers.into_iter().filter(|s| !is_loopback(s)).collect();
    up.extend(
        upstream
            .map(nameservers)
            .unwrap_or_default()
            .into_iter()
            .filter(|s| !is_loopback(s)),
    );
    for s in up {
        out.push_str(&format!("nameserver {s}\n"));
    }
    out
}

/// /etc/hosts of every dyno: `<app>.localhost` for every app (they reach the router at
/// 127.0.0.1, inside their namespace).
pub fn hosts_file(apps: &[String]) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for a in apps {
        s.push_str(&format!("127.0.0.1\t{a}.localhost\n"));
    }
    s
}

fn host_lock() -> Result<Flock<std::fs::File>> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(HOST_LOCK)
        .with_context(|| format!("opening {HOST_LOCK}"))?;
    Flock::lock(f, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .context("locking the host's dyno networks")
}

fn nft(script: &str) -> Result<()> {
    let mut child = std::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running nft (install nftables: apt-get install nftables)")?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "nft: {}",
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', " | ")
        );
    }
    Ok(())
}

fn table_name(instance: &str) -> String {
    format!("dyno_{instance}")
}

/// The host-side veth prefix of an instance's dynos.
fn veth_prefix(instance: &str) -> String {
    format!("dv{instance}")
}

impl Network {
    /// Sets up (or takes back, after a restart that kept dynos running) this home's network.
    pub fn setup(paths: &Paths, base: (Ipv4Addr, u8), router_port: Option<u16>) -> Result<Network> {
        let instance = paths.instance.clone();
        let bridge = format!("dyno{instance}");
        let dir = paths.home.join("net");
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        std::fs::create_dir_all(&dir)?;
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").context("enabling IPv4 forwarding")?;
        let _lock = host_lock()?;
        let mut nl = Netlink::open()?;
        let saved = std::fs::read_to_string(dir.join("subnet"))
            .ok()
            .and_then(|s| s.trim().parse::<Ipv4Addr>().ok());
        let existing = nl.link_index(&bridge)?;
        let subnet = match (existing, saved) {
            (Some(_), Some(s)) => s,
            _ => {
                if existing.is_some() {
                    nl.delete(&bridge)?;
                }
                // Our own /24 of a daemon that could not tear down (killed): still marked
                // unreachable, it would look taken and leak.
                if let Some(s) = saved {
                    nl.delete_route(s, 24, RouteType::Unreachable)?;
                }
                let mut taken: Vec<(Ipv4Addr, u8)> = nl.ipv4_routes()?;
                taken.push(PODMAN);
                for ns in nameservers(&host_resolv) {
                    if let Ok(a) = ns.parse::<Ipv4Addr>() {
                        taken.push((a, 32));
                    }
                }
                choose_subnet(base, &instance, &taken).ok_or_else(|| {
                    anyhow!(
                        "no free /24 left in DYNO_NETWORK {}/{} (set DYNO_NETWORK to another range)",
                        base.0,
                        base.1
                    )
                })?
            }
        };
        let gateway = Ipv4Addr::from(u32::from(subnet) + 1);
        if nl.link_index(&bridge)?.is_none() {
            nl.add_bridge(&bridge)?;
        }
        let index = nl
            .link_index(&bridge)?
            .ok_or_else(|| anyhow!("bridge {bridge} vanished"))?;
        // The gateway alone on the bridge; each dyno gets a /32 route through it while it lives,
        // and the rest of the /24 is unreachable: a connect to a gone dyno fails at once (no
        // ARP wait), and other homes see the /24 as taken.
        nl.add_address(index, gateway, 32)?;
        nl.set_up(index)?;
        nl.add_unreachable(subnet, 24)?;
        std::fs::write(dir.join("subnet"), subnet.to_string())?;
        drop(_lock);

        let net = Network {
            bridge,
            subnet,
            gateway,
            router_port,
            instance,
            dir,
            pending: Arc::default(),
            services: Mutex::default(),
        };
        net.write_ruleset()?;
        let upstream = std::fs::read_to_string("/run/systemd/resolve/resolv.conf").ok();
        std::fs::write(
            net.resolv_path(),
            dyno_resolv_conf(&host_resolv, upstream.as_deref()),
        )?;
        // Read by the dyno user (the daemon's umask is 077), like the hosts file.
        let readable =
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644);
        std::fs::set_permissions(net.resolv_path(), readable)?;
        if !net.hosts_path().exists() {
            net.set_apps(&[])?;
        }
        Ok(net)
    }

    fn hosts_path(&self) -> PathBuf {
        self.dir.join("hosts")
    }

    fn resolv_path(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }

    /// Rewrites the dynos' /etc/hosts in place (a bind mount follows the inode, not the name).
    pub fn set_apps(&self, apps: &[String]) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(self.hosts_path())?;
        f.write_all(hosts_file(apps).as_bytes())?;
        // Readable by the dyno user (the daemon's umask is 077).
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        Ok(())
    }

    fn write_ruleset(&self) -> Result<()> {
        let t = table_name(&self.instance);
        let br = &self.bridge;
        let gw = self.gateway;
        let net = self.subnet;
        let services: Vec<String> = self
            .services
            .lock()
            .unwrap()
            .iter()
            .map(u16::to_string)
            .collect();
        let elements = if services.is_empty() {
            String::new()
        } else {
            format!("elements = {{ {} }}", services.join(", "))
        };
        // `add table` + `delete table` first makes the whole script idempotent.
        let script = format!(
            r#"add table inet {t}
delete table inet {t}
table inet {t} {{
  set services {{ type inet_service; {elements} }}
  chain input {{
    type filter hook input priority -5; policy accept;
    iifname "{br}" ct state established,related accept
    iifname "{br}" ip daddr {gw} tcp dport @services accept
    iifname "{br}" ip daddr {gw} udp dport @services accept
    iifname "{br}" reject with icmpx type admin-prohibited
  }}
  chain forward {{
    type filter hook forward priority -5; policy accept;
    iifname "{br}" oifname "dyno*" reject with icmpx type admin-prohibited
    iifname "{br}" ip daddr 169.254.0.0/16 reject with icmpx type admin-prohibited
    iifname "{br}" ip6 daddr fe80::/10 reject with icmpx type admin-prohibited
  }}
  chain postrouting {{
    type nat hook postrouting priority 100; policy accept;
    ip saddr {net}/24 oifname != "{br}" masquerade
  }}
}}
"#
        );
        nft(&script).context("installing the dyno network's firewall rules")
    }

    /// Opens `port` on the gateway address to every dyno (a platform service: add-ons).
    pub fn allow_service(&self, port: u16) -> Result<()> {
        if !self.services.lock().unwrap().insert(port) {
            return Ok(());
        }
        nft(&format!(
            "add element inet {} services {{ {port} }}\n",
            table_name(&self.instance)
        ))
    }

    /// The address dynos reach the platform's services at.
    pub fn services_addr(&self) -> Ipv4Addr {
        self.gateway
    }

    /// A free dyno address and its names; `router` opens the router's port inside.
    pub fn allocate(&self, router: bool) -> Result<(DynoNet, Reservation)> {
        let prefix = veth_prefix(&self.instance);
        let used: HashSet<u8> = Netlink::open()?
            .links_with_prefix(&prefix)?
            .iter()
            .filter_map(|n| u8::from_str_radix(&n[prefix.len()..], 16).ok())
            .collect();
        let leases = self.dir.join("leases");
        std::fs::create_dir_all(&leases)?;
        let mut pending = self.pending.lock().unwrap();
        let octet = (2..=254u8)
            .find(|o| {
                !used.contains(o) && !pending.contains(o) && !leased(&leases.join(o.to_string()))
            })
            .ok_or_else(|| anyhow!("no free dyno address left in {}/24", self.subnet))?;
        pending.insert(octet);
        let dn = DynoNet {
            bridge: self.bridge.clone(),
            veth: format!("{prefix}{octet:02x}"),
            address: Ipv4Addr::from(u32::from(self.subnet) + octet as u32),
            gateway: self.gateway,
            router_port: if router { self.router_port } else { None },
            hosts: self.hosts_path(),
            resolv: self.resolv_path(),
            lease: leases.join(octet.to_string()),
        };
        Ok((dn, Reservation(self.pending.clone(), octet)))
    }

    /// Deletes host-side veths of this instance that belong to none of `keep` (a crash's
    /// leftovers; namespaces die asynchronously and their veths linger).
    pub fn clean_leftovers(&self, keep: &HashSet<String>) -> Result<()> {
        let mut nl = Netlink::open()?;
        let prefix = veth_prefix(&self.instance);
        for name in nl.links_with_prefix(&prefix)? {
            if !keep.contains(&name) {
                tracing::info!(link = %name, "removing a leftover dyno link");
                nl.delete(&name)?;
            }
        }
        // Host routes to dynos whose veth is gone.
        for (ip, len) in nl.ipv4_routes()? {
            let octet = u32::from(ip).wrapping_sub(u32::from(self.subnet));
            if len != 32 || octet > 255 || ip == self.gateway {
                continue;
            }
            if !keep.contains(&format!("{prefix}{octet:02x}")) {
                nl.delete_route(ip, 32, RouteType::Unicast)?;
            }
        }
        Ok(())
    }

    /// Removes everything of this home's network: veths, bridge, firewall table.
    pub fn teardown(&self) -> Result<()> {
        self.clean_leftovers(&HashSet::new())?;
        let mut nl = Netlink::open()?;
        nl.delete(&self.bridge)?;
        nl.delete_route(self.subnet, 24, RouteType::Unreachable)?;
        nft(&format!(
            "add table inet {t}\ndelete table inet {t}\n",
            t = table_name(&self.instance)
        ))?;
        let _ = std::fs::remove_file(self.dir.join("subnet"));
        Ok(())
    }
}

/// In the shim, between the container's creation and its start: wires the container's network
/// namespace (its init's pid) and returns the router's listener opened inside, if any.
pub fn wire(dn: &DynoNet, pid: i32) -> Result<Option<OwnedFd>> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .context("opening the dyno's network namespace")?;
    let host_ns = std::fs::File::open("/proc/self/ns/net")?;
    let mut nl = Netlink::open()?;
    nl.delete(&dn.veth)?;
    let bridge = nl
        .link_index(&dn.bridge)?
        .ok_or_else(|| anyhow!("bridge {} is missing (is the daemon running?)", dn.bridge))?;
    nl.add_veth(&dn.veth, "eth0", bridge, ns.as_raw_fd())?;
    nl.delete_route(dn.address, 32, RouteType::Unicast)?;
    nl.add_route(dn.address, 32, None, bridge)?;
    drop(nl);
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .context("entering the dyno's network namespace")?;
    let inside = configure_inside(dn);
    // Back to the host's namespace whatever happened: the shim's teardown works there.
    nix::sched::setns(&host_ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .context("leaving the dyno's network namespace")?;
    inside
}

/// Whether a shim holds the lease at `path` (its address is still in use).
fn leased(path: &Path) -> bool {
    let Ok(f) = std::fs::OpenOptions::new().read(true).open(path) else {
        return false;
    };
    // Unlocked (by close) at once when we get it.
    Flock::lock(f, FlockArg::LockExclusiveNonblock).is_err()
}

/// Takes the address's lease for the shim's life (close-on-exec: the container never has it);
/// the shim takes it before it wires anything and keeps it until it has torn everything down.
pub fn take_lease(path: &Path) -> Result<Flock<std::fs::File>> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening the address lease {}", path.display()))?;
    for _ in 0..500 {
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(l) => return Ok(l),
            Err((back, _)) => f = back,
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    bail!("the address lease {} stays taken", path.display())
}

fn configure_inside(dn: &DynoNet) -> Result<Option<OwnedFd>> {
    let mut nl = Netlink::open()?;
    let lo = nl.link_index("lo")?.ok_or_else(|| anyhow!("no lo"))?;
    nl.set_up(lo)?;
    let eth0 = nl.link_index("eth0")?.ok_or_else(|| anyhow!("no eth0"))?;
    nl.add_address(eth0, dn.address, 32)?;
    nl.set_up(eth0)?;
    nl.add_route(dn.gateway, 32, None, eth0)?;
    nl.add_route(Ipv4Addr::UNSPECIFIED, 0, Some(dn.gateway), eth0)?;
    match dn.router_port {
        Some(port) => {
            let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .with_context(|| format!("opening the router's port {port} in the dyno"))?;
            Ok(Some(OwnedFd::from(l)))
        }
        None => Ok(None),
    }
}

/// Deletes a dyno's host-side veth (at teardown: don't wait for the namespace to die).
pub fn unwire(dn: &DynoNet) {
    if let Ok(mut nl) = Netlink::open() {
        // The route first: from then on a connect to the address fails at once (the /24 is
        // unreachable). Deleting a veth whose peer is in another namespace can take seconds
        // (RCU grace periods), and a connect meanwhile would wait on ARP.
        if let Err(e) = nl.delete_route(dn.address, 32, RouteType::Unicast) {
            tracing::warn!("deleting the route to {}: {e:#}", dn.address);
        }
        if let Err(e) = nl.delete(&dn.veth) {
            tracing::warn!("deleting {}: {e:#}", dn.veth);
        }
    }
}

/// [`unwire`] for whoever cleans up after a dead shim: only while nobody holds the address's
/// lease (a shim that is gone released it, and a new dyno may own the address already).
pub fn unwire_unowned(dn: &DynoNet) {
    if dn.lease.as_os_str().is_empty() || !leased(&dn.lease) {
        unwire(dn);
    }
}

/// Reads `spec.json` of a dyno state dir for its network, if any.
pub fn of_state_dir(state_dir: &Path) -> Option<DynoNet> {
    #[derive(Deserialize)]
    struct SpecNet {
        network: Option<DynoNet>,
    }
    let b = std::fs::read(state_dir.join("spec.json")).ok()?;
    serde_json::from_slice::<SpecNet>(&b).ok()?.network
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_skip_what_is_taken() {
        let base = parse_cidr("10.231.0.0/16").unwrap();
        let a = choose_subnet(base, "00000005", &[]).unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 231, 5, 0));
        let b = choose_subnet(base, "00000005", &[(a, 24)]).unwrap();
        assert_eq!(b, Ipv4Addr::new(10, 231, 6, 0));
        // A wider route covers the whole range: nothing left.
        assert!(choose_subnet(base, "00000005", &[(Ipv4Addr::new(10, 0, 0, 0), 8)]).is_none());
        // A resolver's address inside a /24 takes it.
        let c = choose_subnet(base, "000000ff", &[(Ipv4Addr::new(10, 231, 255, 53), 32)]).unwrap();
        assert_eq!(c, Ipv4Addr::new(10, 231, 0, 0));
        assert!(parse_cidr("10.231.0.0/33").is_none());
        assert!(parse_cidr("nope").is_none());
    }

    #[test]
    fn resolv_conf_replaces_a_loopback_stub() {
        let host = "nameserver 127.0.0.53\noptions edns0\nsearch example\n";
        let up = "nameserver 192.0.2.53\nnameserver 127.0.0.1\n";
        let r = dyno_resolv_conf(host, Some(up));
        assert!(r.contains("nameserver 192.0.2.53"), "{r}");
        assert!(!r.contains("127.0.0"), "{r}");
        assert!(r.contains("options edns0"));
        let plain = "nameserver 10.255.255.53\n";
        assert_eq!(dyno_resolv_conf(plain, None), plain);
    }

    #[test]
    fn hosts_name_every_app() {
        let h = hosts_file(&["a".into(), "b-2".into()]);
        assert!(h.contains("127.0.0.1\ta.localhost\n"));
        assert!(h.contains("127.0.0.1\tb-2.localhost\n"));
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
    }
}

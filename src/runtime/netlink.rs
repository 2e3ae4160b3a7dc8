//! A small synchronous rtnetlink client: just the calls dyno networking needs (bridge, veth pair,
//! addresses, routes, link up/down/delete). Shelling out to `ip` costs 14–18 ms per dyno on these
//! machines (shared/notes/containers.md); a netlink request is a few microseconds. Synchronous on
//! purpose: the shim is single-threaded, and the daemon calls it only at start and stop.

use anyhow::{anyhow, bail, Context, Result};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::RawFd;

/// One rtnetlink socket, bound in the network namespace of the thread that opened it.
pub struct Netlink {
    sock: Socket,
    seq: u32,
}

impl Netlink {
    pub fn open() -> Result<Netlink> {
        let mut sock = Socket::new(NETLINK_ROUTE).context("opening a netlink socket")?;
        sock.bind_auto().context("binding the netlink socket")?;
        sock.connect(&SocketAddr::new(0, 0))
            .context("connecting the netlink socket")?;
        Ok(Netlink { sock, seq: 0 })
    }

    /// Sends one request and collects the answers until its ACK (or the end of a dump).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0).context("netlink send")?;
        let mut out = Vec::new();
        let mut rbuf: Vec<u8> = Vec::with_capacity(64 * 1024);
        loop {
            rbuf.clear();
            let n = self.sock.recv(&mut rbuf, 0).context("netlink recv")?;
            let mut off = 0;
            while off < n {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rbuf[off..n])
                    .map_err(|e| anyhow!("netlink reply: {e}"))?;
                let len = reply.header.length as usize;
                if len == 0 {
                    bail!("netlink reply of length 0");
                }
                off += (len + 3) & !3;
                if reply.header.sequence_number != self.seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(out),
                        Some(code) => {
                            return Err(std::io::Error::from_raw_os_error(-code.get()).into())
                        }
                    },
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
            }
        }
    }

    /// Index of the link called `name`, if there is one.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(msg), NLM_F_ACK) {
            Ok(answers) => Ok(answers.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Names of every link whose name starts with `prefix`.
    pub fn links_with_prefix(&mut self, prefix: &str) -> Result<Vec<String>> {
        let answers = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => l.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) if n.starts_with(prefix) => Some(n),
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    /// IPv4 destinations of the main routing table (`(network, prefix length)`).
    pub fn ipv4_routes(&mut self) -> Result<Vec<(Ipv4Addr, u8)>> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        let answers = self.request(RouteNetlinkMessage::GetRoute(msg), NLM_F_DUMP)?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) if r.header.destination_prefix_length > 0 => {
                    let len = r.header.destination_prefix_length;
                    r.attributes.into_iter().find_map(|a| match a {
                        RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some((ip, len)),
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Creates a bridge (ports isolated from each other by [`Netlink::add_veth`]).
    pub fn add_bridge(&mut self, name: &str) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
        )
        .with_context(|| format!("creating bridge {name}"))?;
        Ok(())
    }

    /// Creates a veth pair `host` ↔ `peer`, puts `host` on `bridge` as an isolated port (no
    /// traffic to other isolated ports: no dyno-to-dyno frames, without br_netfilter) and brings
    /// it up, then moves `peer` into the network namespace open at `netns_fd`.
    pub fn add_veth(&mut self, host: &str, peer: &str, bridge: u32, netns_fd: RawFd) -> Result<()> {
        let mut peer_msg = LinkMessage::default();
        peer_msg
            .attributes
            .push(LinkAttribute::IfName(peer.to_string()));
        peer_msg.attributes.push(LinkAttribute::NetNsFd(netns_fd));
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(host.to_string()));
        msg.attributes.push(LinkAttribute::Controller(bridge));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
        )
        .with_context(|| format!("creating veth {host}"))?;
        let index = self
            .link_index(host)?
            .ok_or_else(|| anyhow!("veth {host} vanished"))?;
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::Isolated(
                true,
            )])),
        ]));
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_ACK)
            .with_context(|| format!("isolating bridge port {host}"))?;
        Ok(())
    }

    pub fn set_up(&mut self, index: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK)
            .with_context(|| format!("bringing link {index} up"))?;
        Ok(())
    }

    /// Deletes a link by name; a missing link is not an error.
    pub fn delete(&mut self, name: &str) -> Result<()> {
        let Some(index) = self.link_index(name)? else {
            return Ok(());
        };
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        match self.request(RouteNetlinkMessage::DelLink(msg), NLM_F_ACK) {
            Err(e) if is_errno(&e, libc::ENODEV) => Ok(()),
            r => r
                .map(|_| ())
                .with_context(|| format!("deleting link {name}")),
        }
    }

    /// Adds `addr/prefix` to link `index` (an existing address is fine).
    pub fn add_address(&mut self, index: u32, addr: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix;
        msg.header.scope = AddressScope::Universe;
        msg.header.index = index;
        msg.attributes
            .push(AddressAttribute::Local(IpAddr::V4(addr)));
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V4(addr)));
        match self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
        ) {
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            r => r
                .map(|_| ())
                .with_context(|| format!("adding address {addr}/{prefix}")),
        }
    }

    /// Adds a route to `dest/prefix` through link `oif`, via `gateway` (or on-link without one).
    pub fn add_route(
        &mut self,
        dest: Ipv4Addr,
        prefix: u8,
        gateway: Option<Ipv4Addr>,
        oif: u32,
    ) -> Result<()> {
        let msg = route_message(dest, prefix, gateway, Some(oif));
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
        )
        .with_context(|| format!("adding route to {dest}/{prefix}"))?;
        Ok(())
    }

    /// Adds an `unreachable` route to `dest/prefix` (connects fail at once); one that exists
    /// already is fine.
    pub fn add_unreachable(&mut self, dest: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut msg = route_message(dest, prefix, None, None);
        msg.header.kind = RouteType::Unreachable;
        msg.header.scope = RouteScope::Universe;
        match self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
        ) {
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            r => r
                .map(|_| ())
                .with_context(|| format!("adding unreachable {dest}/{prefix}")),
        }
    }

    /// Deletes the route to `dest/prefix` of type `kind`; a missing one is not an error.
    pub fn delete_route(&mut self, dest: Ipv4Addr, prefix: u8, kind: RouteType) -> Result<()> {
        let mut msg = route_message(dest, prefix, None, None);
        msg.header.kind = kind;
        msg.header.scope = RouteScope::NoWhere;
        match self.request(RouteNetlinkMessage::DelRoute(msg), NLM_F_ACK) {
            Err(e) if is_errno(&e, libc::ESRCH) || is_errno(&e, libc::ENOENT) => Ok(()),
            r => r
                .map(|_| ())
                .with_context(|| format!("deleting route to {dest}/{prefix}")),
        }
    }
}

fn route_message(
    dest: Ipv4Addr,
    prefix: u8,
    gateway: Option<Ipv4Addr>,
    oif: Option<u32>,
) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = AddressFamily::Inet;
    msg.header.destination_prefix_length = prefix;
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Static;
    msg.header.kind = RouteType::Unicast;
    msg.header.scope = if gateway.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    if prefix > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(dest)));
    }
    if let Some(gw) = gateway {
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
    }
    if let Some(oif) = oif {
        msg.attributes.push(RouteAttribute::Oif(oif));
    }
    msg
}

/// Whether `e` is the OS error `errno`.
pub fn is_errno(e: &anyhow::Error, errno: i32) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .and_then(|io| io.raw_os_error())
            == Some(errno)
    })
}

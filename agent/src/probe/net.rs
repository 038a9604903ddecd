//! Listening sockets, with the owning process where `/proc/<pid>/fd` says
//! (as root; otherwise only the agent's own processes are visible, and the
//! rest have no process).
//!
//! On the real root the kernel is asked over netlink (`sock_diag`, as `ss`
//! does), for listening TCP and unconnected UDP sockets only: reading
//! `/proc/net/tcp` makes the kernel walk its whole established-connection
//! hash, which costs milliseconds even on an idle host. Under another host
//! root (fixtures, or where netlink is refused) the tables in
//! `/proc/net/{tcp,tcp6,udp,udp6}` are read instead; both give the same
//! list.
//!
//! TCP sockets count in state `LISTEN` (0A). UDP has no listen state: an
//! unconnected socket (07) bound to a port outside the kernel's ephemeral
//! range (`/proc/sys/net/ipv4/ip_local_port_range`) counts; ephemeral
//! ports are client sockets that come and go.
//!
//! Addresses are printed by the kernel as hex words in host byte order
//! (little-endian here), ports as big-endian hex.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use fathom_shared::wire::Listener;

use super::{HostRoot, Malformed, ReadError};

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Malformed(#[from] Malformed),
}

/// Reads every listening socket. A missing IPv6 table (IPv6 disabled) is
/// not an error; a missing IPv4 table is.
pub fn probe(root: &HostRoot) -> Result<Vec<Listener>, NetError> {
    let ephemeral = ephemeral_range(root);
    let mut out = match root.is_real_root().then(|| diag::listeners(ephemeral)) {
        Some(Ok(listeners)) => listeners,
        Some(Err(e)) => {
            tracing::debug!(error = %e, "sock_diag refused; reading /proc/net instead");
            proc_tables(root, ephemeral)?
        }
        None => proc_tables(root, ephemeral)?,
    };
    let owners = socket_owners(root);
    for l in &mut out {
        if let Some((pid, name)) = l.inode.and_then(|i| owners.get(&i)) {
            l.pid = Some(*pid);
            l.process = Some(name.clone());
        }
    }
    out.sort_by(|a, b| (&a.protocol, a.port, &a.address).cmp(&(&b.protocol, b.port, &b.address)));
    out.dedup_by(|a, b| a.protocol == b.protocol && a.port == b.port && a.address == b.address);
    Ok(out)
}

/// The listening sockets in the `/proc/net` tables under `root`.
fn proc_tables(root: &HostRoot, ephemeral: (u16, u16)) -> Result<Vec<Listener>, NetError> {
    let mut out = Vec::new();
    for (file, protocol, v6) in [
        ("/proc/net/tcp", "tcp", false),
        ("/proc/net/tcp6", "tcp", true),
        ("/proc/net/udp", "udp", false),
        ("/proc/net/udp6", "udp", true),
    ] {
        let bytes = match root.read(file) {
            Ok(b) => b,
            Err(ReadError::Missing { .. }) if v6 => continue,
            Err(e) => return Err(e.into()),
        };
        let text = String::from_utf8_lossy(&bytes);
        let parsed =
            parse_table(&text, protocol, v6, ephemeral).map_err(Malformed::at(root, file))?;
        out.extend(parsed);
    }
    Ok(out)
}

/// The same list from the kernel's `sock_diag` netlink interface.
mod diag {
    use std::net::IpAddr;

    use fathom_shared::wire::Listener;
    use netlink_packet_core::{
        NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
    };
    use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};
    use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
    use netlink_packet_sock_diag::SockDiagMessage;
    use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};

    #[derive(Debug, thiserror::Error)]
    pub enum DiagError {
        #[error("sock_diag netlink socket")]
        Io(#[from] std::io::Error),
        #[error("undecodable sock_diag answer: {0}")]
        Decode(String),
        #[error("the kernel answered the sock_diag request with error {0}")]
        Kernel(i32),
    }

    pub fn listeners(ephemeral: (u16, u16)) -> Result<Vec<Listener>, DiagError> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        let mut out = Vec::new();
        for (protocol, ip_protocol, states) in [
            // Unconnected UDP sockets are in state CLOSE.
            ("tcp", IPPROTO_TCP, StateFlags::LISTEN),
            ("udp", IPPROTO_UDP, StateFlags::CLOSE),
        ] {
            for (family, socket_id) in [
                (AF_INET, SocketId::new_v4()),
                (AF_INET6, SocketId::new_v6()),
            ] {
                for header in dump(&mut socket, family, ip_protocol, states.clone(), socket_id)? {
                    let port = header.socket_id.source_port;
                    if protocol == "udp" && (ephemeral.0..=ephemeral.1).contains(&port) {
                        continue;
                    }
                    let address = match header.socket_id.source_address {
                        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
                            Some(v4) => format!("::ffff:{v4}"),
                            None => ip.to_string(),
                        },
                        IpAddr::V4(ip) => ip.to_string(),
                    };
                    out.push(Listener {
                        protocol: protocol.to_owned(),
                        address,
                        port,
                        uid: header.uid,
                        inode: (header.inode != 0).then_some(u64::from(header.inode)),
                        pid: None,
                        process: None,
                    });
                }
            }
        }
        Ok(out)
    }

    /// One dump request and every answer to it.
    fn dump(
        socket: &mut Socket,
        family: u8,
        protocol: u8,
        states: StateFlags,
        socket_id: SocketId,
    ) -> Result<Vec<netlink_packet_sock_diag::inet::InetResponseHeader>, DiagError> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        let mut request = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol,
                extensions: ExtensionFlags::empty(),
                states,
                socket_id,
            })
            .into(),
        );
        request.finalize();
        let mut bytes = vec![0; request.buffer_len()];
        request.serialize(&mut bytes);
        socket.send(&bytes, 0)?;
        let mut out = Vec::new();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let size = socket.recv(&mut &mut buffer[..], 0)?;
            let mut offset = 0;
            while offset < size {
                let message = NetlinkMessage::<SockDiagMessage>::deserialize(&buffer[offset..size])
                    .map_err(|e| DiagError::Decode(e.to_string()))?;
                match message.payload {
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                        out.push(r.header)
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => {
                        return Err(DiagError::Kernel(e.code.map_or(0, |c| c.get())))
                    }
                    _ => {}
                }
                let length = message.header.length as usize;
                if length == 0 {
                    break;
                }
                offset += length;
            }
        }
    }
}

fn ephemeral_range(root: &HostRoot) -> (u16, u16) {
    root.read_trimmed("/proc/sys/net/ipv4/ip_local_port_range")
        .and_then(|t| {
            let mut parts = t.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// Parses one table; errors carry the 1-based line.
pub fn parse_table(
    text: &str,
    protocol: &str,
    v6: bool,
    ephemeral: (u16, u16),
) -> Result<Vec<Listener>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let n = i + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() < 10 {
            return Err((
                n,
                format!("expected at least 10 fields, found {}", fields.len()),
            ));
        }
        let (address, port) = parse_endpoint(fields[1], v6)
            .ok_or((n, format!("bad local address {:?}", fields[1])))?;
        let state = u8::from_str_radix(fields[3], 16)
            .map_err(|_| (n, format!("bad state {:?}", fields[3])))?;
        let listening = match protocol {
            "tcp" => state == 0x0A,
            _ => state == 0x07 && !(ephemeral.0..=ephemeral.1).contains(&port),
        };
        if !listening {
            continue;
        }
        let uid = fields[7]
            .parse()
            .map_err(|_| (n, format!("bad uid {:?}", fields[7])))?;
        let inode: u64 = fields[9]
            .parse()
            .map_err(|_| (n, format!("bad inode {:?}", fields[9])))?;
        out.push(Listener {
            protocol: protocol.to_owned(),
            address,
            port,
            uid,
            inode: (inode != 0).then_some(inode),
            pid: None,
            process: None,
        });
    }
    Ok(out)
}

fn parse_endpoint(text: &str, v6: bool) -> Option<(String, u16)> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..addr.len() / 8)
        .map(|i| u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let address = match (v6, bytes.len()) {
        (false, 4) => Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
        (true, 16) => {
            let a: [u8; 16] = bytes.try_into().ok()?;
            let ip = Ipv6Addr::from(a);
            match ip.to_ipv4_mapped() {
                Some(v4) => format!("::ffff:{v4}"),
                None => ip.to_string(),
            }
        }
        _ => return None,
    };
    Some((address, port))
}

/// Socket inode → (pid, process name), from `/proc/<pid>/fd`.
fn socket_owners(root: &HostRoot) -> BTreeMap<u64, (u32, String)> {
    let mut out = BTreeMap::new();
    let Ok(procs) = std::fs::read_dir(root.path("/proc")) else {
        return out;
    };
    let mut budget = 200_000usize;
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let name = std::fs::read_to_string(entry.path().join("comm"))
            .map(|c| c.trim().to_owned())
            .unwrap_or_default();
        for fd in fds.flatten() {
            budget = budget.saturating_sub(1);
            if budget == 0 {
                return out;
            }
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok())
            {
                out.entry(inode).or_insert((pid, name.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On this machine, the kernel's two interfaces must agree, including
    /// about sockets this test opens (TCP on IPv4 and IPv6, UDP on a port
    /// below the ephemeral range).
    #[test]
    fn sock_diag_and_proc_net_agree_on_this_machine() {
        let _tcp4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _tcp6 = std::net::TcpListener::bind("[::1]:0");
        let root = HostRoot::new("/");
        let ephemeral = ephemeral_range(&root);
        let _udp = (20_000..20_200)
            .find_map(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).ok())
            .unwrap();
        let key = |l: &Listener| {
            (
                l.protocol.clone(),
                l.address.clone(),
                l.port,
                l.uid,
                l.inode,
            )
        };
        // Other processes may open or close sockets between the two reads.
        let mut last = None;
        for _ in 0..5 {
            let mut netlink: Vec<_> = diag::listeners(ephemeral)
                .unwrap()
                .iter()
                .map(key)
                .collect();
            let mut proc: Vec<_> = proc_tables(&root, ephemeral)
                .unwrap()
                .iter()
                .map(key)
                .collect();
            netlink.sort();
            proc.sort();
            if netlink == proc {
                let port = _tcp4.local_addr().unwrap().port();
                assert!(netlink
                    .iter()
                    .any(|l| l.0 == "tcp" && l.1 == "127.0.0.1" && l.2 == port));
                let udp = _udp.local_addr().unwrap().port();
                assert!(netlink.iter().any(|l| l.0 == "udp" && l.2 == udp));
                return;
            }
            last = Some((netlink, proc));
        }
        panic!("sock_diag and /proc/net disagree: {last:?}");
    }

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/proc/net")
            .join(name);
        std::fs::read_to_string(path).unwrap()
    }

    fn endpoints(v: &[Listener]) -> Vec<String> {
        v.iter()
            .map(|l| format!("{}/{}:{}", l.protocol, l.address, l.port))
            .collect()
    }

    #[test]
    fn listening_sockets_from_real_table_formats() {
        let range = (32768, 60999);
        let tcp = parse_table(&fixture("tcp"), "tcp", false, range).unwrap();
        assert_eq!(
            endpoints(&tcp),
            ["tcp/0.0.0.0:22", "tcp/127.0.0.1:3306", "tcp/0.0.0.0:80"]
        );
        assert_eq!(tcp[1].uid, 106);
        assert_eq!(tcp[0].inode, Some(18231));
        assert_eq!(tcp[2].inode, None, "inode 0: no owner to find");
        let tcp6 = parse_table(&fixture("tcp6"), "tcp", true, range).unwrap();
        assert_eq!(
            endpoints(&tcp6),
            ["tcp/:::22", "tcp/::1:25", "tcp/::ffff:127.0.0.1:8080"]
        );
        let udp = parse_table(&fixture("udp"), "udp", false, range).unwrap();
        assert_eq!(
            endpoints(&udp),
            ["udp/0.0.0.0:68", "udp/127.0.0.53:53"],
            "ephemeral and connected sockets are not listeners"
        );
        let udp6 = parse_table(&fixture("udp6"), "udp", true, range).unwrap();
        assert_eq!(endpoints(&udp6), ["udp/:::546"]);
    }

    #[test]
    fn malformed_tables_name_the_line() {
        let bad = "header\n   0: 00000000:0016 00000000:0000 0A\n";
        let (line, message) = parse_table(bad, "tcp", false, (32768, 60999)).unwrap_err();
        assert_eq!(line, 2);
        assert!(message.contains("10 fields"), "{message}");
        let bad = "header\n   0: 0000000Z:0016 00000000:0000 0A 0:0 0:0 0 0 0 1\n";
        assert!(parse_table(bad, "tcp", false, (32768, 60999))
            .unwrap_err()
            .1
            .contains("local address"));
    }

    #[test]
    fn this_machine_listens_somewhere_or_nowhere_but_parses() {
        // The live tables parse; on a machine with a listener, its owner is
        // found when we can see it.
        let listeners = probe(&HostRoot::new("/")).unwrap();
        for l in &listeners {
            assert!(l.protocol == "tcp" || l.protocol == "udp");
        }
    }
}

//! What sysfs adds to an interface (`/sys/class/net/<name>`): the driver,
//! link state and speed, MTU, and its role: a bond, bridge or VLAN, or a
//! port of one (its `master`).

use fathom_shared::wire::Interface;

use super::HostRoot;

/// Fills in sysfs details for each interface it can find.
pub fn enrich(root: &HostRoot, interfaces: &mut [Interface]) {
    for i in interfaces {
        let base = format!("/sys/class/net/{}", i.name);
        let dir = root.path(&base);
        if !dir.is_dir() {
            continue;
        }
        let field = |f: &str| root.read_trimmed(&format!("{base}/{f}"));
        i.driver = std::fs::read_link(dir.join("device/driver"))
            .ok()
            .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()));
        i.link_up = field("operstate").map(|s| s == "up");
        // -1 (or unreadable) when the link is down or the driver does not say.
        i.speed_mbps = field("speed")
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|s| *s > 0)
            .map(|s| s as u64);
        i.mtu = field("mtu").and_then(|s| s.parse().ok());
        let devtype = field("uevent").and_then(|u| {
            u.lines()
                .find_map(|l| l.strip_prefix("DEVTYPE=").map(str::to_owned))
        });
        i.kind = Some(if dir.join("bonding").is_dir() {
            "bond".to_owned()
        } else if dir.join("bridge").is_dir() {
            "bridge".to_owned()
        } else if let Some(t) = devtype {
            t
        } else if i.name == "lo" {
            "loopback".to_owned()
        } else if dir.join("device").exists() {
            "physical".to_owned()
        } else {
            "virtual".to_owned()
        });
        i.master = std::fs::read_link(dir.join("master"))
            .ok()
            .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers_links_and_roles() {
        let root = tempfile::tempdir().unwrap();
        let net = root.path().join("sys/class/net");
        let put = |path: &str, value: &str| {
            let p = net.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, format!("{value}\n")).unwrap();
        };
        put("eno1/operstate", "up");
        put("eno1/speed", "10000");
        put("eno1/mtu", "9000");
        put("eno1/uevent", "INTERFACE=eno1\nIFINDEX=2");
        std::fs::create_dir_all(root.path().join("sys/bus/pci/drivers/ixgbe")).unwrap();
        std::fs::create_dir_all(net.join("eno1/device")).unwrap();
        std::os::unix::fs::symlink(
            root.path().join("sys/bus/pci/drivers/ixgbe"),
            net.join("eno1/device/driver"),
        )
        .unwrap();
        put("bond0/operstate", "up");
        put("bond0/bonding/mode", "802.3ad 4");
        std::os::unix::fs::symlink(net.join("bond0"), net.join("eno1/master")).unwrap();
        put("bond0.100/operstate", "up");
        put("bond0.100/uevent", "DEVTYPE=vlan\nINTERFACE=bond0.100");
        put("br0/operstate", "down");
        put("br0/speed", "-1");
        put("br0/bridge/stp_state", "0");
        let mut ifs: Vec<Interface> = ["eno1", "bond0", "bond0.100", "br0", "gone0"]
            .iter()
            .map(|n| Interface {
                name: n.to_string(),
                ..Interface::default()
            })
            .collect();
        enrich(&HostRoot::new(root.path()), &mut ifs);
        let eno1 = &ifs[0];
        assert_eq!(eno1.driver.as_deref(), Some("ixgbe"));
        assert_eq!(
            (eno1.link_up, eno1.speed_mbps, eno1.mtu),
            (Some(true), Some(10_000), Some(9000))
        );
        assert_eq!(eno1.kind.as_deref(), Some("physical"));
        assert_eq!(eno1.master.as_deref(), Some("bond0"));
        assert_eq!(ifs[1].kind.as_deref(), Some("bond"));
        assert_eq!(ifs[2].kind.as_deref(), Some("vlan"));
        assert_eq!(
            (ifs[3].kind.as_deref(), ifs[3].link_up, ifs[3].speed_mbps),
            (Some("bridge"), Some(false), None)
        );
        assert_eq!(ifs[4].kind, None, "not in sysfs: left as it was");
    }
}

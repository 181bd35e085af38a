//! Hosts for multi-host tests, made on this machine: one network namespace per host, each
//! with a veth pair whose outer end is on a bridge in the test's own namespace. Every host
//! has an address that exists only on its own interface; the bridge has one too, for the
//! test process (the driver). Taking a host's outer link down partitions it.
//!
//! Creating namespaces needs root and `ip` (iproute2); where they cannot be made (or
//! `EMBER_TEST_NO_NETNS` is set), [`Network::create`] says why and the test falls back to
//! loopback addresses. Everything
//! is removed when the [`Network`] is dropped; leftovers of a killed run (named after a pid
//! no longer alive) are removed by the next one.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The prefix of every namespace and interface these tests make.
const PREFIX: &str = "emb";

/// A bridge and namespaces on it; torn down on drop.
pub struct Network {
    tag: String,
    bridge: String,
    hosts: Vec<Host>,
    subnet: [u8; 3],
    /// Directories the hosts do not have: each host's processes see an empty one there.
    hidden: Vec<PathBuf>,
}

/// One host: a namespace and its link to the bridge.
struct Host {
    namespace: String,
    outer: String,
}

/// Runs `ip` with `args`; the error names the command and what it printed.
fn ip(args: &[&str]) -> Result<Output, String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl Network {
    /// Makes `hosts` hosts. The error says why they cannot be made here.
    pub fn create(hosts: usize) -> Result<Network, String> {
        if std::env::var_os("EMBER_TEST_NO_NETNS").is_some() {
            return Err("EMBER_TEST_NO_NETNS is set".into());
        }
        if !Path::new("/proc/self/ns/net").exists() {
            return Err("this kernel has no network namespaces".into());
        }
        remove_leftovers();
        let pid = std::process::id();
        // Short enough for interface names (15 bytes): "emb" + 5 hex digits + suffix.
        let tag = format!("{PREFIX}{:05x}", pid & 0xf_ffff);
        let subnet = [10, 254, (pid % 251) as u8];
        let mut network = Network {
            bridge: format!("{tag}br"),
            tag,
            hosts: Vec::new(),
            subnet,
            hidden: Vec::new(),
        };
        // On an error part-way, dropping `network` removes what was made.
        ip(&["link", "add", "name", &network.bridge, "type", "bridge"])?;
        let bridge_addr = format!("{}/24", network.driver_addr());
        ip(&["addr", "add", &bridge_addr, "dev", &network.bridge])?;
        ip(&["link", "set", &network.bridge, "up"])?;
        for i in 0..hosts {
            let namespace = format!("{}-{i}", network.tag);
            ip(&["netns", "add", &namespace])?;
            let outer = format!("{}o{i}", network.tag);
            let inner = format!("{}i{i}", network.tag);
            network.hosts.push(Host {
                namespace: namespace.clone(),
                outer: outer.clone(),
            });
            ip(&[
                "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ])?;
            ip(&["link", "set", &inner, "netns", &namespace])?;
            ip(&["link", "set", &outer, "master", &network.bridge])?;
            ip(&["link", "set", &outer, "up"])?;
            let addr = format!("{}/24", network.host_addr(i));
            ip(&["-n", &namespace, "addr", "add", &addr, "dev", &inner])?;
            ip(&["-n", &namespace, "link", "set", &inner, "up"])?;
            ip(&["-n", &namespace, "link", "set", "lo", "up"])?;
        }
        Ok(network)
    }

    /// The test process's own address, on the bridge.
    pub fn driver_addr(&self) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, 1)
    }

    /// Host `i`'s address, which exists only inside its namespace.
    pub fn host_addr(&self, i: usize) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, 2 + i as u8)
    }

    /// From now on, the processes started on the hosts see an empty directory at `dir`, so
    /// that the hosts share no file there with this one (a mount namespace of their own,
    /// with a tmpfs over `dir`): the test's binary, say, is not on their disks.
    pub fn hide_on_hosts(&mut self, dir: &Path) {
        self.hidden.push(dir.to_path_buf());
    }

    /// A command that runs `program` on host `i` (in its namespace, and with the hidden
    /// directories hidden); the caller's arguments are the program's.
    pub fn command(&self, i: usize, program: &Path) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.hosts[i].namespace]);
        if self.hidden.is_empty() {
            command.arg(program);
            return command;
        }
        // `sh -c SCRIPT PROGRAM ARGS...`: the script mounts, then runs "$0" "$@".
        let mut script = String::new();
        for dir in &self.hidden {
            script.push_str(&format!(
                "mount -t tmpfs -o size=1m,mode=0755 ember-hidden '{}' && ",
                dir.display()
            ));
        }
        script.push_str("exec \"$0\" \"$@\"");
        command
            .args(["unshare", "--mount", "--propagation", "private", "--"])
            .args(["sh", "-c", &script])
            .arg(program);
        command
    }

    /// Cuts host `i` off: its link to the bridge goes down. Connections stall; none is
    /// reset.
    pub fn partition(&self, i: usize) -> Result<(), String> {
        ip(&["link", "set", &self.hosts[i].outer, "down"]).map(drop)
    }

    /// Brings host `i`'s link back up.
    pub fn heal(&self, i: usize) -> Result<(), String> {
        ip(&["link", "set", &self.hosts[i].outer, "up"]).map(drop)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and so the pair.
        for host in &self.hosts {
            if let Err(e) = ip(&["netns", "del", &host.namespace]) {
                eprintln!("teardown: {e}");
            }
        }
        if let Err(e) = ip(&["link", "del", &self.bridge]) {
            eprintln!("teardown: {e}");
        }
    }
}

/// Removes namespaces and bridges of earlier runs whose process is gone.
fn remove_leftovers() {
    let alive = |tag: &str| {
        let Ok(pid_bits) = u32::from_str_radix(&tag[PREFIX.len()..], 16) else {
            return true;
        };
        // The tag keeps the pid's low 20 bits: any live process matching them counts.
        std::fs::read_dir("/proc").is_ok_and(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .any(|pid| pid & 0xf_ffff == pid_bits)
        })
    };
    let tag_of = |name: &str| -> Option<String> {
        let tag = name.get(..PREFIX.len() + 5)?;
        (tag.starts_with(PREFIX) && tag[PREFIX.len()..].chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| tag.to_string())
    };
    if let Ok(out) = ip(&["netns", "list"]) {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            if tag_of(name).is_some_and(|t| !alive(&t)) {
                let _ = ip(&["netns", "del", name]);
            }
        }
    }
    if let Ok(out) = ip(&["-o", "link", "show", "type", "bridge"]) {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "7: emb1a2b3br: <...>"
            let name = line.split(':').nth(1).unwrap_or_default().trim();
            if tag_of(name).is_some_and(|t| !alive(&t)) {
                let _ = ip(&["link", "del", name]);
            }
        }
    }
}

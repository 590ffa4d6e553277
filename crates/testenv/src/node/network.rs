//! The node's network: a namespace of its own, joined to this host by a veth pair whose
//! /30 is the only way in or out. The control plane and the local Okta listen on the host
//! end; the kubelet, containerd, kube-proxy and every Pod live in the namespace. It has no
//! default route, so no Pod traffic can leave for anywhere else.

use crate::LaunchError;
use std::net::Ipv4Addr;
use std::process::Command;

/// The Pods' addresses, on the node's bridge.
pub const POD_CIDR: &str = "10.244.0.0/24";
/// The Services' cluster IPs (the apiserver's `--service-cluster-ip-range`).
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
/// The `kubernetes` Service's cluster IP, first of the range.
pub const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);

#[derive(Debug)]
pub struct NodeNetwork {
    pub netns: String,
    /// The host's end: the apiserver and the local Okta listen here.
    pub host_ip: Ipv4Addr,
    /// The node's end: its InternalIP.
    pub node_ip: Ipv4Addr,
}

fn run(args: &[&str]) -> Result<(), LaunchError> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| LaunchError::Io {
            context: format!("running ip {}", args.join(" ")),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(LaunchError::Network(format!(
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

impl NodeNetwork {
    /// The host's and the node's addresses of the network `id` creates, known before it
    /// exists (for an apiserver configuration that names the node).
    pub fn addresses(id: u32) -> (Ipv4Addr, Ipv4Addr) {
        let index = id % (1 << 20);
        let base = u32::from(Ipv4Addr::new(10, 64, 0, 0)) + index * 4;
        (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2))
    }

    /// A /30 in 10.64.0.0/10 chosen by `id` (the process id), so that test binaries
    /// running side by side get their own.
    pub fn create(id: u32) -> Result<Self, LaunchError> {
        let index = id % (1 << 20);
        let (host_ip, node_ip) = Self::addresses(id);
        let netns = format!("okta-rbac-node-{id}");
        let (host_link, node_link) = (format!("okh{index}"), format!("okn{index}"));
        let network = Self {
            netns: netns.clone(),
            host_ip,
            node_ip,
        };
        run(&["netns", "add", &netns])?;
        let steps: Vec<Vec<String>> = vec![
            vec![
                "link".into(),
                "add".into(),
                host_link.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                node_link.clone(),
            ],
            vec![
                "link".into(),
                "set".into(),
                node_link.clone(),
                "netns".into(),
                netns.clone(),
            ],
            vec![
                "addr".into(),
                "add".into(),
                format!("{host_ip}/30"),
                "dev".into(),
                host_link.clone(),
            ],
            vec!["link".into(), "set".into(), host_link.clone(), "up".into()],
            vec![
                "-n".into(),
                netns.clone(),
                "addr".into(),
                "add".into(),
                format!("{node_ip}/30"),
                "dev".into(),
                node_link.clone(),
            ],
            vec![
                "-n".into(),
                netns.clone(),
                "link".into(),
                "set".into(),
                node_link,
                "up".into(),
            ],
            vec![
                "-n".into(),
                netns.clone(),
                "link".into(),
                "set".into(),
                "lo".into(),
                "up".into(),
            ],
        ];
        for step in steps {
            let args: Vec<&str> = step.iter().map(String::as_str).collect();
            // A failure leaves the namespace; dropping `network` deletes it.
            run(&args)?;
        }
        network.sysctl("net.ipv4.ip_forward", "1")?;
        Ok(network)
    }

    /// Sets a sysctl inside the namespace (the per-namespace ones).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<(), LaunchError> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let status = Command::new("ip")
            .args(["netns", "exec", &self.netns, "sh", "-c"])
            .arg(format!("echo {value} > {path}"))
            .status()
            .map_err(|source| LaunchError::Io {
                context: format!("setting {key}"),
                source,
            })?;
        if status.success() {
            Ok(())
        } else {
            Err(LaunchError::Network(format!(
                "setting {key} in {}",
                self.netns
            )))
        }
    }

    /// The arguments of `nsenter` that run a command inside the namespace. Not
    /// `ip netns exec`: it remounts /sys in a mount namespace of its own, which hides the
    /// cgroup hierarchies from the kubelet ("failed to find cgroup mounts").
    pub fn nsenter_args(&self) -> Vec<String> {
        vec![format!("--net=/run/netns/{}", self.netns)]
    }
}

impl Drop for NodeNetwork {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair with it. The node's teardown has
        // usually deleted it already.
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.netns])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

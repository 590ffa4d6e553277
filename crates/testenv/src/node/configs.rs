//! The node components' configuration files: containerd (CRI with runc and the CNI
//! plugins), the bridge network, the kubelet and kube-proxy. Settings that the machines of
//! this project need are explained where they are set.

use super::network::{NodeNetwork, POD_CIDR};
use std::path::Path;

pub const NODE_NAME: &str = "okta-node";

/// containerd 2's configuration, everything under `dir`.
pub fn containerd(dir: &Path, node_bin: &Path, cni_conf: &Path, pause_image: &str) -> String {
    let d = dir.display();
    format!(
        r#"version = 3
root = "{d}/root"
state = "{d}/state"

[grpc]
  address = "{d}/containerd.sock"

[plugins.'io.containerd.cri.v1.runtime']
  # runc may not lower its own oom_score_adj here; without this every sandbox fails with
  # "failed to update /proc/self/oom_score_adj: Permission denied".
  restrict_oom_score_adj = true
  # The Pods' network namespaces under the state directory, where teardown finds them.
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{bin}"]
    conf_dir = "{conf}"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{pause_image}"
"#,
        bin = node_bin.display(),
        conf = cni_conf.display(),
    )
}

/// One bridge for the Pods, masquerading what leaves it (so the host answers the node).
pub fn cni_conflist() -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "okta-node",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    })
    .to_string()
}

/// The kubelet: cgroupfs on this machine's cgroup v1 hierarchy (which the kubelet refuses
/// unless told), its Pods under a cgroup root named like the node's namespace, containerd's socket, no swap check, no eviction of test Pods for a full
/// disk, and the static files it needs in `dir`.
pub fn kubelet(dir: &Path, containerd_socket: &Path, network: &NodeNetwork) -> String {
    serde_json::json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": format!("/{}", network.netns),
        "failCgroupV1": false,
        "failSwapOn": false,
        "containerRuntimeEndpoint": format!("unix://{}", containerd_socket.display()),
        "authentication": {
            "anonymous": {"enabled": false},
            "webhook": {"enabled": false},
            "x509": {"clientCAFile": dir.join("ca.crt")},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "address": network.node_ip.to_string(),
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 0,
        "clusterDomain": "cluster.local",
        "resolvConf": "",
        "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": false,
        "podPidsLimit": -1,
        "registerNode": true,
        "cgroupsPerQOS": true,
        "enforceNodeAllocatable": [],
        "localStorageCapacityIsolation": false,
    })
    .to_string()
}

/// kube-proxy in iptables mode; it leaves conntrack's table size alone (a namespace may not
/// change it).
pub fn kube_proxy(kubeconfig: &Path) -> String {
    serde_json::json!({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": NODE_NAME,
        "clientConnection": {"kubeconfig": kubeconfig},
        "conntrack": {"maxPerCore": 0, "min": 0},
        "metricsBindAddress": "127.0.0.1:10249",
        "healthzBindAddress": "127.0.0.1:10256",
    })
    .to_string()
}

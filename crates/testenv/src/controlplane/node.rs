//! A real node beside the control plane (`ControlPlaneOptions::node`): kube-scheduler, and
//! in the node's network namespace containerd, the kubelet and kube-proxy, all from
//! `make node`. Images reach containerd by import, never by pull.

use super::kubeconfig::{Credentials, kubeconfig};
use super::{ControlPlane, LaunchError, READY_TIMEOUT, io_error};
use crate::node::configs::{self, NODE_NAME};
use crate::node::network::NodeNetwork;
use crate::node::teardown::create_cgroup_root;
use crate::paths::node_bin_dir;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The sandbox image the node's containerd is told to use (built by `make node`).
pub const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10.1";

pub(super) const SCHEDULER: &str = "kube-scheduler";
const CONTAINERD: &str = "containerd";
const KUBELET: &str = "kubelet";
const KUBE_PROXY: &str = "kube-proxy";

impl ControlPlane {
    fn node_dir(&self) -> PathBuf {
        self.dir.join("node")
    }

    fn containerd_socket(&self) -> PathBuf {
        self.node_dir().join("containerd/containerd.sock")
    }

    fn network(&self) -> Result<&NodeNetwork, LaunchError> {
        self.network
            .as_ref()
            .ok_or_else(|| LaunchError::Network("this control plane has no node".into()))
    }

    /// A kubeconfig file for a component authenticated by a client certificate.
    fn component_kubeconfig(
        &self,
        name: &str,
        user: &str,
        groups: &[&str],
    ) -> Result<PathBuf, LaunchError> {
        let cert = self.pki.client_cert(user, groups)?;
        let path = self.node_dir().join(format!("{name}.kubeconfig"));
        let config = kubeconfig(
            &self.server_url,
            self.pki.ca.cert_pem(),
            Credentials::ClientCert(&cert),
        );
        std::fs::write(&path, config.to_string())
            .map_err(io_error(format!("writing {}", path.display())))?;
        Ok(path)
    }

    fn write_node_file(&self, name: &str, content: &str) -> Result<PathBuf, LaunchError> {
        let path = self.node_dir().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io_error(format!("creating {}", parent.display())))?;
        }
        std::fs::write(&path, content).map_err(io_error(format!("writing {}", path.display())))?;
        Ok(path)
    }

    /// Starts the scheduler, then the node's containerd, kubelet and kube-proxy, imports
    /// the pause image, and waits until the node is Ready.
    pub(super) async fn start_node(&mut self) -> Result<(), LaunchError> {
        let bins = node_bin_dir();
        for name in [
            SCHEDULER,
            CONTAINERD,
            KUBELET,
            KUBE_PROXY,
            "containerd-shim-runc-v2",
            "ctr",
            "bridge",
            "pause.tar",
        ] {
            let path = bins.join(name);
            if !path.exists() {
                return Err(LaunchError::MissingBinary { path });
            }
        }
        std::fs::create_dir_all(self.node_dir())
            .map_err(io_error("creating the node's directory"))?;
        let scheduler_kubeconfig =
            self.component_kubeconfig("scheduler", "system:kube-scheduler", &[])?;
        self.spawn_path(
            SCHEDULER,
            &bins.join(SCHEDULER),
            vec![
                format!("--kubeconfig={}", scheduler_kubeconfig.display()),
                "--leader-elect=false".into(),
                "--bind-address=127.0.0.1".into(),
                "--secure-port=0".into(),
            ],
        )?;

        let network = self.network()?;
        let (netns, node_ip) = (network.netns.clone(), network.node_ip);
        create_cgroup_root(&netns)?;
        let containerd_dir = self.node_dir().join("containerd");
        std::fs::create_dir_all(&containerd_dir)
            .map_err(io_error("creating containerd's directory"))?;
        let cni_conf = self.node_dir().join("cni");
        self.write_node_file("cni/10-okta-node.conflist", &configs::cni_conflist())?;
        let containerd_config = self.write_node_file(
            "containerd/config.toml",
            &configs::containerd(&containerd_dir, &bins, &cni_conf, PAUSE_IMAGE),
        )?;
        // containerd finds its shim on PATH.
        let path = format!(
            "{}:{}",
            bins.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        self.spawn_in_node(
            CONTAINERD,
            &bins.join(CONTAINERD),
            vec![format!("--config={}", containerd_config.display())],
            &[("PATH", &path)],
        )?;
        self.wait_for_file(CONTAINERD, &self.containerd_socket())
            .await?;
        self.import_image(&bins.join("pause.tar"))?;

        let kubelet_dir = self.node_dir().join("kubelet");
        std::fs::create_dir_all(&kubelet_dir)
            .map_err(io_error("creating the kubelet's directory"))?;
        std::fs::copy(self.dir.join("ca.crt"), kubelet_dir.join("ca.crt"))
            .map_err(io_error("copying the CA"))?;
        let kubelet_kubeconfig = self.component_kubeconfig(
            "kubelet",
            &format!("system:node:{NODE_NAME}"),
            &["system:nodes"],
        )?;
        let network = self.network()?;
        let kubelet_config = self.write_node_file(
            "kubelet/config.json",
            &configs::kubelet(&kubelet_dir, &self.containerd_socket(), network),
        )?;
        self.spawn_in_node(
            KUBELET,
            &bins.join(KUBELET),
            vec![
                format!("--config={}", kubelet_config.display()),
                format!("--kubeconfig={}", kubelet_kubeconfig.display()),
                format!("--root-dir={}", kubelet_dir.join("root").display()),
                format!("--cert-dir={}", kubelet_dir.join("pki").display()),
                format!("--hostname-override={NODE_NAME}"),
                format!("--node-ip={node_ip}"),
                "--v=1".into(),
            ],
            &[("PATH", &path)],
        )?;
        let proxy_kubeconfig = self.component_kubeconfig("kube-proxy", "system:kube-proxy", &[])?;
        let proxy_config =
            self.write_node_file("kube-proxy.json", &configs::kube_proxy(&proxy_kubeconfig))?;
        self.spawn_in_node(
            KUBE_PROXY,
            &bins.join(KUBE_PROXY),
            vec![format!("--config={}", proxy_config.display())],
            &[("PATH", &path)],
        )?;
        tracing::info!(%netns, %node_ip, "node started");
        self.wait_for_node_ready().await
    }

    /// Imports an image archive (`docker-archive` with its name) into the node's
    /// containerd, where the kubelet finds it: images reach the node only this way.
    pub fn import_image(&self, archive: &Path) -> Result<(), LaunchError> {
        let output = Command::new(node_bin_dir().join("ctr"))
            .arg("--address")
            .arg(self.containerd_socket())
            .args(["--namespace", "k8s.io", "images", "import", "--no-unpack"])
            .arg(archive)
            .output()
            .map_err(io_error("running ctr"))?;
        if output.status.success() {
            return Ok(());
        }
        Err(LaunchError::Network(format!(
            "importing {}: {}",
            archive.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }

    /// The host's address on the node's network: where a server the Pods must reach
    /// (the local Okta) listens. `None` without a node.
    pub fn host_ip(&self) -> Option<std::net::Ipv4Addr> {
        self.network.as_ref().map(|n| n.host_ip)
    }

    /// The cgroup (of the v1 `controller`, such as `memory`) of a container of this node,
    /// by its id (the part of `containerID` after `containerd://`).
    pub fn container_cgroup(&self, controller: &str, container_id: &str) -> Option<PathBuf> {
        let root = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&self.network.as_ref()?.netns);
        find_dir(&root, container_id, 6)
    }

    /// The node's name, when there is one.
    pub fn node_name(&self) -> Option<&'static str> {
        self.network.as_ref().map(|_| NODE_NAME)
    }

    async fn wait_for_file(&mut self, name: &'static str, path: &Path) -> Result<(), LaunchError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !path.exists() {
            self.check_alive()?;
            if Instant::now() > deadline {
                return Err(self.timeout_error(name, format!("{} did not appear", path.display())));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    async fn wait_for_node_ready(&mut self) -> Result<(), LaunchError> {
        let nodes: Api<Node> = Api::all(self.client().await?);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.check_alive()?;
            let ready = nodes
                .get_opt(NODE_NAME)
                .await
                .ok()
                .flatten()
                .is_some_and(|node| {
                    node.status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                });
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.timeout_error(
                    KUBELET,
                    format!("node {NODE_NAME} not Ready after {READY_TIMEOUT:?}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// A component inside the node's network namespace.
    fn spawn_in_node(
        &mut self,
        name: &'static str,
        binary: &Path,
        args: Vec<String>,
        env: &[(&str, &str)],
    ) -> Result<(), LaunchError> {
        let mut wrapped = self.network()?.nsenter_args();
        wrapped.push("env".into());
        wrapped.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        wrapped.push(binary.display().to_string());
        wrapped.extend(args);
        self.spawn_path(name, Path::new("nsenter"), wrapped)
    }
}

/// The directory called `name` at most `depth` levels below `dir`.
fn find_dir(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    let subdirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    if let Some(found) = subdirs
        .iter()
        .find(|d| d.file_name().is_some_and(|n| n == name))
    {
        return Some(found.clone());
    }
    if depth == 0 {
        return None;
    }
    subdirs.iter().find_map(|d| find_dir(d, name, depth - 1))
}

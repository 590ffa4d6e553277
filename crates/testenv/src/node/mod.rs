//! The test node's pieces that need no running process: its network namespace and the
//! configuration files of containerd, the CNI plugins, the kubelet and kube-proxy.

pub mod configs;
pub mod network;
pub mod teardown;

//! Starting the components in order and waiting for each, with errors that name the
//! component and show its log.

use super::flags::{apiserver_args, authentication_config, controller_manager_args, etcd_args};
use super::kubeconfig::{Credentials, kubeconfig};
use super::{
    APISERVER, CONTROLLER_MANAGER, ControlPlane, ControlPlaneOptions, ETCD, LOG_TAIL_LINES,
    LaunchError, READY_TIMEOUT, io_error,
};
use crate::process::{Component, free_port};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

impl ControlPlane {
    pub(super) fn write_files(&self, options: &ControlPlaneOptions) -> Result<(), LaunchError> {
        let pki = &self.pki;
        let files = [
            ("ca.crt", pki.ca.cert_pem().to_string()),
            ("apiserver.crt", pki.apiserver.cert_pem.clone()),
            ("apiserver.key", pki.apiserver.key_pem.clone()),
            ("service-account.key", pki.service_account_key_pem.clone()),
            // How the apiserver reaches a kubelet (logs, exec); the kubelet trusts our CA.
            ("kubelet-client.crt", pki.admin.cert_pem.clone()),
            ("kubelet-client.key", pki.admin.key_pem.clone()),
            (
                "service-account.pub",
                pki.service_account_public_key_pem.clone(),
            ),
            (
                "kubeconfig",
                kubeconfig(
                    &self.server_url,
                    pki.ca.cert_pem(),
                    Credentials::ClientCert(&pki.admin),
                )
                .to_string(),
            ),
        ];
        for (name, content) in files {
            let path = self.dir.join(name);
            std::fs::write(&path, content)
                .map_err(io_error(format!("writing {}", path.display())))?;
        }
        if let Some(oidc) = &options.oidc {
            let path = self.dir.join("authentication-config.json");
            std::fs::write(&path, authentication_config(oidc).to_string())
                .map_err(io_error(format!("writing {}", path.display())))?;
        }
        if let Some(config) = &options.authorization_config {
            let path = self.dir.join("authorization-config.json");
            std::fs::write(&path, config.to_string())
                .map_err(io_error(format!("writing {}", path.display())))?;
        }
        Ok(())
    }

    pub(super) async fn launch(
        &mut self,
        bins: &Path,
        apiserver_port: u16,
        options: &ControlPlaneOptions,
    ) -> Result<(), LaunchError> {
        let etcd_port = free_port().map_err(io_error("picking a port"))?;
        let peer_port = free_port().map_err(io_error("picking a port"))?;
        self.spawn(bins, ETCD, etcd_args(&self.dir, etcd_port, peer_port))?;
        self.wait_for_port(ETCD, Ipv4Addr::LOCALHOST, etcd_port)
            .await?;

        let mut args = apiserver_args(
            &self.dir,
            apiserver_port,
            etcd_port,
            options.oidc.is_some(),
            options.authorization_config.is_some(),
            self.network.as_ref(),
        );
        args.extend(options.extra_apiserver_args.iter().cloned());
        self.spawn(bins, APISERVER, args)?;
        let address = self
            .network
            .as_ref()
            .map_or(Ipv4Addr::LOCALHOST, |n| n.host_ip);
        self.wait_for_port(APISERVER, address, apiserver_port)
            .await?;
        self.wait_for_ready().await?;

        self.spawn(
            bins,
            CONTROLLER_MANAGER,
            controller_manager_args(&self.dir, options.node),
        )?;
        if options.node {
            self.start_node().await?;
        }
        Ok(())
    }

    fn spawn(
        &mut self,
        bins: &Path,
        name: &'static str,
        args: Vec<String>,
    ) -> Result<(), LaunchError> {
        self.spawn_path(name, &bins.join(name), args)
    }

    /// Starts a component with its log in the working directory.
    pub(super) fn spawn_path(
        &mut self,
        name: &'static str,
        binary: &Path,
        args: Vec<String>,
    ) -> Result<(), LaunchError> {
        let log = self.dir.join(format!("{name}.log"));
        let component = Component::spawn(name, binary, &args, log, &mut self.watchdog)
            .map_err(io_error(format!("starting {name}")))?;
        self.components.push(component);
        Ok(())
    }

    /// Fails with the log tail of any component that has exited.
    pub(super) fn check_alive(&mut self) -> Result<(), LaunchError> {
        for component in &mut self.components {
            if let Some(status) = component.exit_status() {
                return Err(component_error(component, format!("exited with {status}")));
            }
        }
        Ok(())
    }

    async fn wait_for_port(
        &mut self,
        name: &'static str,
        address: Ipv4Addr,
        port: u16,
    ) -> Result<(), LaunchError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.check_alive()?;
            if tokio::net::TcpStream::connect((address, port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.timeout_error(
                    name,
                    format!("port {port} not open after {READY_TIMEOUT:?}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `/readyz`, which RBAC lets anyone read, with a client that trusts our CA.
    pub(super) async fn wait_for_ready(&mut self) -> Result<(), LaunchError> {
        let tls = okta_rbac_pki::client_config_trusting(&[self.pki.ca.cert_pem()])
            .map_err(LaunchError::Client)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| LaunchError::Client(e.to_string()))?;
        let url = format!("{}/readyz", self.server_url);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.check_alive()?;
            let answer = match http.get(&url).send().await {
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    if status.is_success() && body.trim() == "ok" {
                        return Ok(());
                    }
                    format!("{status}: {body}")
                }
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                return Err(self.timeout_error(
                    APISERVER,
                    format!("/readyz not ok after {READY_TIMEOUT:?}; last answer: {answer}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(super) fn timeout_error(&self, name: &'static str, reason: String) -> LaunchError {
        match self.components.iter().find(|c| c.name == name) {
            Some(component) => component_error(component, reason),
            None => LaunchError::Client(reason),
        }
    }
}

fn component_error(component: &Component, reason: String) -> LaunchError {
    LaunchError::Component {
        component: component.name,
        reason,
        log: component.log_path.clone(),
        tail: component.log_excerpt(LOG_TAIL_LINES),
    }
}

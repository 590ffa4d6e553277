//! Where the test world finds its binaries and the repository's files, decided at run
//! time (a binary built in one checkout must not look into another).

use crate::LaunchError;
use std::path::{Path, PathBuf};

const OPERATOR: &str = "okta-rbac-operator";

/// The repository checkout: the nearest directory at or above the working directory that
/// holds `config/default`. Cargo runs tests in their crate's directory, make in the root.
pub fn checkout() -> PathBuf {
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    here.ancestors()
        .find(|dir| dir.join("config/default/kustomization.yaml").is_file())
        .map_or(here.clone(), Path::to_path_buf)
}

/// The control plane's binaries: `$OKTA_RBAC_CONTROLPLANE_BIN` (the Makefile sets it), or
/// where `make controlplane` links them in the checkout.
pub fn controlplane_bin_dir() -> PathBuf {
    std::env::var_os("OKTA_RBAC_CONTROLPLANE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| checkout().join(".build/controlplane/bin"))
}

/// The test node's binaries and the pause image archive: `$OKTA_RBAC_NODE_BIN` (the
/// Makefile sets it), or where `make node` links them in the checkout.
pub fn node_bin_dir() -> PathBuf {
    std::env::var_os("OKTA_RBAC_NODE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| checkout().join(".build/node/bin"))
}

/// The operator's image as `make image` exports it (a docker-archive with its name):
/// `$OKTA_RBAC_IMAGE_ARCHIVE`, or `dist/okta-rbac-operator-image.tar` in the checkout.
pub fn operator_image_archive() -> PathBuf {
    std::env::var_os("OKTA_RBAC_IMAGE_ARCHIVE")
        .map(PathBuf::from)
        .unwrap_or_else(|| checkout().join("dist/okta-rbac-operator-image.tar"))
}

/// A peer operator's file as `make peers` links it: `$OKTA_RBAC_PEERS_BIN/<name>`, or
/// `.build/peers/bin/<name>` in the checkout.
pub fn peer(name: &str) -> PathBuf {
    std::env::var_os("OKTA_RBAC_PEERS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| checkout().join(".build/peers/bin"))
        .join(name)
}

/// A Go tool the tests drive (`make tools`): `$OKTA_RBAC_TOOLS_BIN/<name>` (the Makefile
/// sets it), or where `make tools` links it in the checkout.
pub fn tool(name: &str) -> PathBuf {
    std::env::var_os("OKTA_RBAC_TOOLS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| checkout().join(".build/tools/bin"))
        .join(name)
}

/// The CRDs of the other projects whose kinds the chart and the components render (`make
/// third-party-crds`): `$OKTA_RBAC_THIRD_PARTY_CRDS` (the Makefile sets it), or where make
/// links them in the checkout.
pub fn third_party_crds_dir() -> PathBuf {
    std::env::var_os("OKTA_RBAC_THIRD_PARTY_CRDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| checkout().join(".build/third-party-crds"))
}

/// The operator binary: `$OKTA_RBAC_OPERATOR_BIN`, or the one built beside the running
/// executable (see [`built_binary`]).
pub fn operator_binary() -> Result<PathBuf, LaunchError> {
    match std::env::var_os("OKTA_RBAC_OPERATOR_BIN") {
        Some(path) => Ok(PathBuf::from(path)),
        None => built_binary(OPERATOR),
    }
}

/// A binary of the workspace, from beside the running executable: Cargo puts every binary
/// of a build in one directory, and test executables one level below it, in `deps/`.
/// `make rust-test` builds them all before the tests.
pub fn built_binary(name: &str) -> Result<PathBuf, LaunchError> {
    let exe = std::env::current_exe().map_err(|source| LaunchError::Io {
        context: "finding the running executable".into(),
        source,
    })?;
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(name))
        .collect();
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .ok_or_else(|| LaunchError::NotBuilt {
            name: name.to_string(),
            looked_in: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Checks a file the repository commits but a test generates (the docs' reference pages,
/// written from the code): panics when the committed file differs, naming the command
/// that writes it; with `OKTA_RBAC_UPDATE_DOCS=1` (what `make docs-reference` sets) it
/// writes the file instead.
pub fn check_generated(relative: &str, generated: &str) {
    let path = checkout().join(relative);
    if std::env::var_os("OKTA_RBAC_UPDATE_DOCS").is_some() {
        std::fs::write(&path, generated)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or(
                committed.lines().count().min(generated.lines().count()),
                |i| i,
            )
            + 1;
        panic!(
            "{relative} is stale (first difference at line {line}): run `make docs-reference` \
             and commit the result"
        );
    }
}

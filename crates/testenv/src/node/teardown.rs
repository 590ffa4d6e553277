//! What the node leaves outside its processes, and how it goes: the containers (in the
//! node's cgroup tree), the shims and node components (in its network namespace), the
//! mounts under its directory (volumes, overlay roots, the Pods' network namespaces), the
//! cgroups, and the namespace itself. The same shell command runs at a normal teardown and
//! from the watchdog when the test process dies.

use crate::LaunchError;
use std::path::Path;
use std::process::Command;

const CGROUP_FS: &str = "/sys/fs/cgroup";

/// Creates `/<name>` in every cgroup v1 hierarchy: the kubelet's `cgroupRoot` must exist
/// before it starts. A new cpuset cgroup has no CPUs or memory nodes; it gets its parent's.
pub fn create_cgroup_root(name: &str) -> Result<(), LaunchError> {
    let hierarchies = std::fs::read_dir(CGROUP_FS).map_err(|source| LaunchError::Io {
        context: format!("listing {CGROUP_FS}"),
        source,
    })?;
    for hierarchy in hierarchies.flatten() {
        let dir = hierarchy.path().join(name);
        std::fs::create_dir_all(&dir).map_err(|source| LaunchError::Io {
            context: format!("creating the cgroup {}", dir.display()),
            source,
        })?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let parent = hierarchy.path().join(file);
            if let Ok(value) = std::fs::read_to_string(&parent) {
                std::fs::write(dir.join(file), value.trim()).map_err(|source| LaunchError::Io {
                    context: format!("setting {file} of {}", dir.display()),
                    source,
                })?;
            }
        }
    }
    Ok(())
}

/// A shell command that kills everything the node started and removes what it left.
/// Killing goes in rounds: a dying shim may still start nothing, but a kill racing a
/// container start can miss one.
pub fn teardown_command(netns: &str, cgroup: &str, dir: &Path) -> String {
    let dir = dir.display();
    format!(
        r#"for round in 1 2 3 4 5; do
  pids="$(ip netns pids {netns} 2>/dev/null) $(find {CGROUP_FS}/*/{cgroup} -name cgroup.procs -exec cat {{}} + 2>/dev/null)"
  [ -z "$(echo $pids)" ] && break
  kill -KILL $pids 2>/dev/null
  sleep 0.2
done
awk '$2 ~ "^{dir}/" {{print $2}}' /proc/mounts | sort -r | while read -r mount; do umount -l "$mount" 2>/dev/null; done
find {CGROUP_FS}/*/{cgroup} -depth -type d -exec rmdir {{}} \; 2>/dev/null
ip netns delete {netns} 2>/dev/null
true"#
    )
}

/// Runs [`teardown_command`] now.
pub fn tear_down(command: &str) {
    let _ = Command::new("sh").arg("-c").arg(command).status();
}

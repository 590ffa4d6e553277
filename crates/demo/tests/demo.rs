//! `okta-rbac-demo --once`, the non-interactive form of `make demo`, shows the objects and
//! what each example user may do, and ends cleanly: the operator is stopped before the
//! control plane, so nothing is printed as a warning or an error.

use std::process::Command;

#[test]
fn the_demo_shows_each_users_access() {
    let output = Command::new(env!("CARGO_BIN_EXE_okta-rbac-demo"))
        .arg("--once")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let row = |user: &str| -> Vec<String> {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(user))
            .unwrap_or_else(|| panic!("no row for {user}:\n{stdout}"));
        line.split('|')
            .skip(1)
            .map(|cell| cell.trim().to_string())
            .collect()
    };
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("k8s-admins") && l.contains("True")),
        "{stdout}"
    );
    assert_eq!(row("alice@example.com"), vec!["allowed"; 6]);
    assert_eq!(
        row("bob@example.com"),
        [
            "allowed",
            "allowed",
            "Forbidden",
            "Forbidden",
            "Forbidden",
            "Forbidden"
        ]
    );
    assert_eq!(row("carol@example.com"), vec!["Forbidden"; 6]);
    assert_eq!(row("dave@example.com"), vec!["Forbidden"; 6]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let trouble: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("WARN") || line.contains("ERROR") || line.contains("error"))
        .collect();
    assert!(
        trouble.is_empty(),
        "a clean run says nothing is wrong:\n{stderr}"
    );
    assert!(
        stdout.contains(">> why: kubectl okta-rbac explain bob@example.com")
            && stdout.lines().any(
                |l| l.trim_start().starts_with("list secrets -n default") && l.contains(" no ")
            ),
        "the demo ends with the plugin's explain: {stdout}"
    );
    assert!(stdout.contains(">> stopping"), "{stdout}");
}

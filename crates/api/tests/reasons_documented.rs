//! Every reason a condition can give is explained in the README, with what to do about it:
//! users, alerts and GitOps health checks key on these names.

use okta_rbac_api::conditions::Reason;

#[test]
fn every_reason_has_a_row_in_the_readme() {
    let readme = include_str!("../../../README.md");
    let missing: Vec<&str> = Reason::ALL
        .iter()
        .map(|reason| reason.as_str())
        .filter(|reason| {
            let row = format!("\n| `{reason}` |");
            !readme.contains(&row)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's reason table has no row for: {missing:?}"
    );
}

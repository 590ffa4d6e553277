//! Every reason a condition can give is explained in the docs' conditions page, with what
//! to do about it: users, alerts and GitOps health checks key on these names.

use okta_rbac_api::conditions::Reason;

#[test]
fn every_reason_has_a_row_in_the_conditions_page() {
    let page = include_str!("../../../docs/reference/conditions.md");
    let missing: Vec<&str> = Reason::ALL
        .iter()
        .map(|reason| reason.as_str())
        .filter(|reason| {
            let row = format!("\n| `{reason}` |");
            !page.contains(&row)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/reference/conditions.md's reason table has no row for: {missing:?}"
    );
}

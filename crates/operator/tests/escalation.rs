//! The escalation guard shipped in config/policy: a user who may create
//! OktaGroupBindings can grant through them only roles the user may bind.

mod common;

use common::eventually;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::{Client, CustomResourceExt};
use okta_rbac_api::{
    ClusterRoleBindingSpec, OktaGroupBinding, OktaGroupBindingSpec, RoleBindingSpec,
};
use okta_rbac_testenv::{ControlPlane, unique_name};
use std::time::Duration;

fn plane() -> &'static ControlPlane {
    ControlPlane::shared(|| vec![OktaGroupBinding::crd()])
}

fn rule(group: &str, resource: &str, verbs: &[&str], names: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(vec![resource.into()]),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        resource_names: (!names.is_empty()).then(|| names.iter().map(|n| n.to_string()).collect()),
        ..Default::default()
    }
}

/// Gives `user` a ClusterRole with these rules, cluster-wide.
async fn grant(admin: &Client, user: &str, rules: Vec<PolicyRule>) {
    let name = unique_name("guard-test");
    let role = ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        rules: Some(rules),
        ..Default::default()
    };
    Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &role)
        .await
        .expect("role");
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name,
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "User".into(),
            name: user.into(),
            namespace: None,
        }]),
    };
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&PostParams::default(), &binding)
        .await
        .expect("binding");
}

fn granting(cluster_roles: &[&str], role_in_default: Option<&str>) -> OktaGroupBindingSpec {
    OktaGroupBindingSpec {
        group: "k8s-admins".into(),
        subject: Default::default(),
        cluster_role_bindings: cluster_roles
            .iter()
            .map(|r| ClusterRoleBindingSpec {
                cluster_role: r.to_string(),
            })
            .collect(),
        role_bindings: role_in_default
            .map(|role| RoleBindingSpec {
                namespace: Some("default".into()),
                namespace_selector: None,
                role: Some(role.into()),
                cluster_role: None,
            })
            .into_iter()
            .collect(),
        on_group_missing: Default::default(),
        paused: false,
        start_time: None,
        end_time: None,
    }
}

/// `cluster_wide` ClusterRoleBindings and `in_namespaces` RoleBindings of `view`, each in
/// a namespace of its own.
fn many_grants(cluster_wide: usize, in_namespaces: usize) -> OktaGroupBindingSpec {
    let cluster_roles = ["view", "edit", "admin", "cluster-admin"];
    OktaGroupBindingSpec {
        cluster_role_bindings: cluster_roles[..cluster_wide]
            .iter()
            .map(|r| ClusterRoleBindingSpec {
                cluster_role: r.to_string(),
            })
            .collect(),
        role_bindings: (0..in_namespaces)
            .map(|n| RoleBindingSpec {
                namespace: Some(format!("team-{n:02}")),
                namespace_selector: None,
                role: None,
                cluster_role: Some("view".into()),
            })
            .collect(),
        ..granting(&[], None)
    }
}

/// Creates the object as `client`: `Ok` when admitted, the denial message otherwise.
async fn try_create(client: &Client, spec: OktaGroupBindingSpec) -> Result<(), String> {
    let api: Api<OktaGroupBinding> = Api::all(client.clone());
    let name = unique_name("guarded");
    match api
        .create(&PostParams::default(), &OktaGroupBinding::new(&name, spec))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 403 => Err(status.message),
        Err(other) => panic!("unexpected answer: {other}"),
    }
}

/// The two tests change what the policies enforce: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn install_policies() {
    let installed = plane()
        .kubectl(&["apply", "-k", "config/policy"], None)
        .expect("kubectl");
    assert!(
        installed.success,
        "installing config/policy: {}",
        installed.stderr
    );
}

#[tokio::test]
async fn a_capped_cluster_role_is_admitted_only_with_an_end_within_its_cap() {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::{SignedDuration, Timestamp};
    let _one = SERIAL.lock().await;
    install_policies();
    let admin = plane().client().await.expect("admin");
    let _ = Api::<Namespace>::all(admin.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some("okta-rbac-operator".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await;
    let limits: Api<ConfigMap> = Api::namespaced(admin.clone(), "okta-rbac-operator");
    let hours = |h: i64| Some(Time(Timestamp::now() + SignedDuration::from_hours(h)));
    let timed = |roles: &[&str], start: Option<Time>, end: Option<Time>| OktaGroupBindingSpec {
        start_time: start,
        end_time: end,
        ..granting(roles, None)
    };
    assert_eq!(
        try_create(&admin, granting(&["cluster-admin"], None)).await,
        Ok(()),
        "without the ConfigMap nothing is capped"
    );
    limits
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("okta-rbac-operator-grant-limits".into()),
                    ..Default::default()
                },
                data: Some([("cluster-admin".to_string(), "8h".to_string())].into()),
                ..Default::default()
            },
        )
        .await
        .expect("the caps");
    let denied = eventually(Duration::from_secs(30), "the cap is enforced", || {
        let admin = admin.clone();
        async move {
            try_create(&admin, granting(&["cluster-admin"], None))
                .await
                .err()
        }
    })
    .await;
    assert!(
        denied.contains("cluster-admin (at most 8h)") && denied.contains("spec.endTime"),
        "{denied}"
    );
    let too_long = try_create(&admin, timed(&["cluster-admin"], hours(1), hours(10))).await;
    assert!(too_long.is_err(), "nine hours of cluster-admin");
    let in_namespace = OktaGroupBindingSpec {
        role_bindings: vec![RoleBindingSpec {
            namespace: Some("default".into()),
            namespace_selector: None,
            role: None,
            cluster_role: Some("cluster-admin".into()),
        }],
        ..granting(&[], None)
    };
    assert!(
        try_create(&admin, in_namespace).await.is_err(),
        "capped in a namespace too"
    );
    assert_eq!(
        try_create(&admin, timed(&["cluster-admin"], hours(1), hours(3))).await,
        Ok(()),
        "two hours of cluster-admin"
    );
    assert_eq!(
        try_create(&admin, timed(&["cluster-admin"], None, hours(7))).await,
        Ok(()),
        "seven hours from now"
    );
    assert_eq!(
        try_create(&admin, granting(&["view"], None)).await,
        Ok(()),
        "an uncapped role needs no end"
    );
    limits
        .delete("okta-rbac-operator-grant-limits", &DeleteParams::default())
        .await
        .expect("remove the caps");
    eventually(Duration::from_secs(30), "no cap any more", || {
        let admin = admin.clone();
        async move {
            try_create(&admin, granting(&["cluster-admin"], None))
                .await
                .ok()
        }
    })
    .await;
}

#[tokio::test]
async fn a_user_may_grant_through_an_okta_group_binding_only_what_it_may_bind() {
    let _one = SERIAL.lock().await;
    // Either test may take the lock first: each installs what it checks.
    install_policies();
    let admin = plane().client().await.expect("admin");
    let user = unique_name("jane");
    grant(
        &admin,
        &user,
        vec![rule(
            "oktarbac.io",
            "oktagroupbindings",
            &["create", "get", "list", "update", "delete"],
            &[],
        )],
    )
    .await;
    let jane = plane().client_as_user(&user, &[]).await.expect("jane");

    // The policy takes a moment to be enforced after it is created, and jane's own
    // permission a moment to reach the authorizer: until then RBAC refuses her.
    let denied = eventually(
        Duration::from_secs(30),
        "the guard denies cluster-admin",
        || {
            let jane = jane.clone();
            async move {
                try_create(&jane, granting(&["cluster-admin"], None))
                    .await
                    .err()
                    .filter(|denial| !denial.contains("cannot create resource"))
            }
        },
    )
    .await;
    assert!(
        denied.contains(&format!("user {user} may not grant")),
        "{denied}"
    );
    assert!(
        denied.contains("bind verb on each of: cluster-admin"),
        "{denied}"
    );
    assert!(denied.contains("bind verb"), "{denied}");
    let denied = try_create(&jane, granting(&[], Some("restricted-user")))
        .await
        .expect_err("a Role needs bind too");
    assert!(
        denied.contains("Role restricted-user in default"),
        "{denied}"
    );

    grant(
        &admin,
        &user,
        vec![
            rule(
                "rbac.authorization.k8s.io",
                "clusterroles",
                &["bind"],
                &["cluster-admin"],
            ),
            rule(
                "rbac.authorization.k8s.io",
                "roles",
                &["bind"],
                &["restricted-user"],
            ),
        ],
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "admitted once the user may bind cluster-admin",
        || {
            let jane = jane.clone();
            async move {
                try_create(&jane, granting(&["cluster-admin"], None))
                    .await
                    .ok()
            }
        },
    )
    .await;
    try_create(&jane, granting(&[], Some("restricted-user")))
        .await
        .expect("admitted with bind on the Role");
    let denied = try_create(&jane, granting(&["cluster-admin", "edit"], None))
        .await
        .expect_err("edit is not bindable");
    assert!(denied.contains("cluster-admin, edit"), "{denied}");
    // Bind on named roles is checked role by role, and Kubernetes allows two checks per
    // kind of grant: a third role in a named namespace gets a message saying so.
    let denied = try_create(&jane, many_grants(1, 3))
        .await
        .expect_err("three role checks");
    assert!(
        denied.contains("may not bind every role")
            && denied.contains("3 roles in named namespaces")
            && denied.contains("split it into objects of at most two each"),
        "{denied}"
    );

    // Whoever may bind every role (as a GitOps controller usually may) is not limited.
    let ops = unique_name("ops");
    grant(
        &admin,
        &ops,
        vec![
            rule(
                "oktarbac.io",
                "oktagroupbindings",
                &["create", "get", "list", "update", "delete"],
                &[],
            ),
            rule("rbac.authorization.k8s.io", "clusterroles", &["bind"], &[]),
            rule("rbac.authorization.k8s.io", "roles", &["bind"], &[]),
        ],
    )
    .await;
    let ops = plane().client_as_user(&ops, &[]).await.expect("ops");
    eventually(
        Duration::from_secs(30),
        "a user who may bind every role grants 3 ClusterRoles and 20 RoleBindings",
        || {
            let ops = ops.clone();
            async move { try_create(&ops, many_grants(3, 20)).await.ok() }
        },
    )
    .await;

    let admin_api: Api<OktaGroupBinding> = Api::all(admin.clone());
    let name = unique_name("by-admin");
    admin_api
        .create(
            &PostParams::default(),
            &OktaGroupBinding::new(&name, granting(&["cluster-admin", "edit"], None)),
        )
        .await
        .expect("an administrator may grant anything");
    admin_api
        .delete(&name, &DeleteParams::default())
        .await
        .expect("clean up");
}

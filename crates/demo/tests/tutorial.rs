//! The tutorial, end to end: the kube-apiserver trusts the local Okta as its OIDC issuer,
//! the operator turns the example OktaGroupBindings into RBAC, and each example user's
//! real ID token gets exactly what their Okta groups were granted.

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams};
use okta_rbac_api::OktaGroupBinding;
use okta_rbac_demo::{ACTIONS, Demo, USERS, access, id_token};
use okta_rbac_testenv::paths::{controlplane_bin_dir, operator_binary};
use okta_rbac_testenv::wait::{eventually, wait_condition};
use okta_sim::seed::{ClaimFilterType, GroupsClaim};
use okta_sim::{GroupType, OktaSim};
use std::process::Command;
use std::time::Duration;

type Tutorial = Demo;

/// Each test runs a whole world (control plane, local Okta, operator): one at a time, so
/// that two cores are not shared three ways and timings stay those of one world.
static ONE_WORLD_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The example org, a control plane trusting it, and the operator running as itself:
/// its own process, its ServiceAccount's token, exactly the RBAC of config/default.
async fn tutorial(prefix: &str) -> Tutorial {
    let binary =
        operator_binary().expect("the operator binary (cargo build -p okta-rbac-operator)");
    Demo::start(prefix, &binary)
        .await
        .expect("the example org, a control plane trusting it, the operator and the samples")
}

async fn token_of(sim: &OktaSim, user: &str) -> String {
    let password = USERS
        .iter()
        .find(|(u, _)| *u == user)
        .expect("an example user")
        .1;
    id_token(sim, "default", user, password)
        .await
        .expect("an ID token")
}

/// 200 for the actions a user may do, 403 for the rest.
fn expected(allowed: &[&str]) -> Vec<u16> {
    ACTIONS
        .iter()
        .map(|action| if allowed.contains(action) { 200 } else { 403 })
        .collect()
}

fn code<T>(result: Result<T, kube::Error>) -> u16 {
    match result {
        Ok(_) => 200,
        Err(kube::Error::Api(status)) => status.code,
        Err(other) => panic!("no answer from the apiserver: {other}"),
    }
}

const BOB: &[&str] = &["list pods in default", "list services in default"];

async fn check_matrix(t: &Tutorial) {
    for (user, allowed) in [
        ("alice@example.com", &ACTIONS[..]),
        ("bob@example.com", BOB),
        ("carol@example.com", &[][..]),
        ("dave@example.com", &[][..]),
    ] {
        let token = token_of(&t.sim, user).await;
        let client = t
            .plane
            .client_with_token(&token)
            .await
            .expect("token client");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let seen = loop {
            let seen = access(&client).await;
            if seen == expected(allowed) {
                break seen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{user}: saw {seen:?} for {ACTIONS:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        println!("{user}: {seen:?}");
    }
}

#[tokio::test]
async fn each_example_user_gets_exactly_what_their_groups_were_granted() {
    let _world = ONE_WORLD_AT_A_TIME.lock().await;
    let t = tutorial("").await;
    check_matrix(&t).await;

    // kubectl with a real token, as a person would call it.
    let bob = token_of(&t.sim, "bob@example.com").await;
    let server = t.plane.server_url().to_string();
    let ca = t.plane.dir().join("ca.crt");
    let as_bob = |args: &[&str]| {
        let output = Command::new(controlplane_bin_dir().join("kubectl"))
            .args(["--server", &server, "--certificate-authority"])
            .arg(&ca)
            .args(["--token", &bob])
            .args(args)
            .output()
            .expect("kubectl");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert!(
        as_bob(&["get", "pods", "-n", "default"]).0,
        "bob may list pods in default"
    );
    let (ok, stderr) = as_bob(&["get", "secrets", "-n", "default"]);
    assert!(
        !ok && stderr.contains("Forbidden"),
        "bob may not list secrets: {stderr}"
    );
    let (ok, stderr) = as_bob(&["auth", "whoami"]);
    assert!(ok, "{stderr}");

    // The group is deleted in Okta: its bindings are revoked, even for a token that
    // still names the group.
    let alice = token_of(&t.sim, "alice@example.com").await;
    let alice_client = t.plane.client_with_token(&alice).await.expect("alice");
    let admins = t
        .sim
        .group_id("k8s-admins", GroupType::OktaGroup)
        .expect("group");
    t.sim.delete_group(&admins).expect("delete");
    let admin = t.plane.client().await.expect("admin");
    wait_condition(
        &admin,
        "k8s-admins",
        "GroupVerified",
        "False",
        Some("GroupMissing"),
    )
    .await;
    eventually(Duration::from_secs(20), "alice loses cluster-admin", || {
        let client = alice_client.clone();
        async move {
            (code(
                Api::<Secret>::namespaced(client, "default")
                    .list(&Default::default())
                    .await,
            ) == 403)
                .then_some(())
        }
    })
    .await;

    // The OktaGroupBinding is deleted: bob's access is gone.
    let bob_client = t.plane.client_with_token(&bob).await.expect("bob");
    Api::<OktaGroupBinding>::all(admin)
        .delete("k8s-restricted-users", &DeleteParams::default())
        .await
        .expect("delete the binding");
    eventually(Duration::from_secs(30), "bob loses access", || {
        let client = bob_client.clone();
        async move {
            (code(
                Api::<Pod>::namespaced(client, "default")
                    .list(&Default::default())
                    .await,
            ) == 403)
                .then_some(())
        }
    })
    .await;

    // Users mode: bob is bound by name as an active member, and loses access when he
    // is removed from the group in Okta, though his token still names the group.
    let admin = t.plane.client().await.expect("admin");
    let users_mode = serde_json::json!({
        "apiVersion": "oktarbac.io/v1alpha1",
        "kind": "OktaGroupBinding",
        "metadata": {"name": "restricted-members"},
        "spec": {
            "group": "k8s-restricted-users",
            "subject": {"kind": "Users"},
            "roleBindings": [{"namespace": "default", "role": "restricted-user"}],
        },
    });
    let users_mode: OktaGroupBinding = serde_json::from_value(users_mode).expect("object");
    Api::<OktaGroupBinding>::all(admin.clone())
        .create(&kube::api::PostParams::default(), &users_mode)
        .await
        .expect("create");
    wait_condition(&admin, "restricted-members", "Ready", "True", None).await;
    eventually(Duration::from_secs(30), "bob is bound by name", || {
        let client = bob_client.clone();
        async move {
            (code(
                Api::<Pod>::namespaced(client, "default")
                    .list(&Default::default())
                    .await,
            ) == 200)
                .then_some(())
        }
    })
    .await;
    let group = t
        .sim
        .group_id("k8s-restricted-users", GroupType::OktaGroup)
        .expect("group");
    t.sim
        .remove_member(&group, "bob@example.com")
        .expect("remove bob");
    eventually(
        Duration::from_secs(40),
        "bob loses access at the next check",
        || {
            let client = bob_client.clone();
            async move {
                (code(
                    Api::<Pod>::namespaced(client, "default")
                        .list(&Default::default())
                        .await,
                ) == 403)
                    .then_some(())
            }
        },
    )
    .await;
    let peak = t
        .operator_peak_memory_kib()
        .expect("the operator runs as its own process");
    println!(
        "operator peak memory during the tutorial: {:.1} MiB",
        peak as f64 / 1024.0
    );
}

#[tokio::test]
async fn with_oidc_prefixes_the_subject_shows_the_prefix_and_access_still_matches() {
    let _world = ONE_WORLD_AT_A_TIME.lock().await;
    let t = tutorial("oidc:").await;
    let listed = t.plane.kubectl(&["get", "ogb"], None).expect("kubectl");
    assert!(listed.success, "{}", listed.stderr);
    let table = listed.stdout;
    assert!(
        table.contains("oidc:k8s-admins") && table.contains("oidc:k8s-restricted-users"),
        "{table}"
    );
    check_matrix(&t).await;
}

#[tokio::test]
async fn the_groups_claim_check_says_whether_a_token_will_carry_the_group() {
    let _world = ONE_WORLD_AT_A_TIME.lock().await;
    let t = tutorial("").await;
    let admin = t.plane.client().await.expect("admin");
    let carried = wait_condition(&admin, "k8s-admins", "ClaimCarriesGroup", "True", None).await;
    let message = &common_condition(&carried, "ClaimCarriesGroup").message;
    assert!(message.contains("STARTS_WITH \"k8s-\""), "{message}");
    let alice = token_of(&t.sim, "alice@example.com").await;
    let alice_client = t.plane.client_with_token(&alice).await.expect("alice");
    assert_eq!(
        access(&alice_client).await,
        expected(&ACTIONS),
        "alice is an admin"
    );

    // An Okta admin narrows the claim's filter so that k8s-admins no longer passes.
    t.sim
        .set_groups_claim(
            "default",
            GroupsClaim {
                filter_type: ClaimFilterType::Equals,
                filter_value: "k8s-restricted-users".into(),
                ..GroupsClaim::default()
            },
        )
        .expect("claim");
    let excluded = wait_condition(
        &admin,
        "k8s-admins",
        "ClaimCarriesGroup",
        "False",
        Some("ClaimFilterExcludesGroup"),
    )
    .await;
    let ready = common_condition(&excluded, "Ready");
    assert_eq!(ready.status, "True", "advisory: the binding itself stays");
    assert!(
        common_condition(&excluded, "ClaimCarriesGroup")
            .message
            .contains("EQUALS \"k8s-restricted-users\""),
    );
    let still_bob = wait_condition(
        &admin,
        "k8s-restricted-users",
        "ClaimCarriesGroup",
        "True",
        None,
    )
    .await;
    assert!(still_bob.status.is_some());
    let events = Api::<k8s_openapi::api::core::v1::Event>::all(admin.clone());
    let warning = eventually(Duration::from_secs(20), "a Warning event", || {
        let events = events.clone();
        async move {
            let selector =
                kube::api::ListParams::default().fields("involvedObject.name=k8s-admins");
            events
                .list(&selector)
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("ClaimFilterExcludesGroup"))
        }
    })
    .await;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));

    // And it is true: alice's new token no longer carries the group.
    let alice = token_of(&t.sim, "alice@example.com").await;
    let alice_client = t.plane.client_with_token(&alice).await.expect("alice");
    assert_eq!(
        access(&alice_client).await,
        expected(&[]),
        "the binding exists, the token does not match it"
    );
}

fn common_condition<'a>(
    ogb: &'a OktaGroupBinding,
    type_: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    okta_rbac_testenv::wait::condition(ogb, type_).expect("condition")
}

/// The built-in roles grant what they grant in any cluster (the controller manager
/// aggregates `view` and `edit`): a member of a group bound to `view` reads but does not
/// write or see Secrets, one bound to `edit` in `default` writes there and nowhere else.
#[tokio::test]
async fn view_reads_and_edit_writes_through_the_aggregated_roles() {
    use okta_rbac_api::{ClusterRoleBindingSpec, OktaGroupBindingSpec, RoleBindingSpec};
    let _world = ONE_WORLD_AT_A_TIME.lock().await;
    let t = tutorial("").await;
    let api: Api<OktaGroupBinding> = Api::all(t.plane.client().await.expect("client"));
    let grant = |group: &str, cluster: Vec<ClusterRoleBindingSpec>, roles: Vec<RoleBindingSpec>| {
        OktaGroupBinding::new(
            group,
            OktaGroupBindingSpec {
                group: group.into(),
                subject: Default::default(),
                cluster_role_bindings: cluster,
                role_bindings: roles,
                on_group_missing: Default::default(),
                paused: false,
                start_time: None,
                end_time: None,
            },
        )
    };
    for (group, member, object) in [
        (
            "k8s-viewers",
            "carol@example.com",
            grant(
                "k8s-viewers",
                vec![ClusterRoleBindingSpec {
                    cluster_role: "view".into(),
                }],
                vec![],
            ),
        ),
        (
            "k8s-editors",
            "dave@example.com",
            grant(
                "k8s-editors",
                vec![],
                vec![RoleBindingSpec {
                    namespace: Some("default".into()),
                    namespace_selector: None,
                    role: None,
                    cluster_role: Some("edit".into()),
                }],
            ),
        ),
    ] {
        let id = t
            .sim
            .create_group(group, GroupType::OktaGroup)
            .expect("group");
        t.sim.add_member(&id, member).expect("member");
        api.create(&Default::default(), &object)
            .await
            .expect("create");
        wait_condition(
            &t.plane.client().await.expect("client"),
            group,
            "Ready",
            "True",
            None,
        )
        .await;
    }
    for (user, allowed) in [
        (
            "carol@example.com",
            &[
                "list pods in default",
                "list services in default",
                "list pods in kube-system",
                "list namespaces",
            ][..],
        ),
        (
            "dave@example.com",
            &[
                "list pods in default",
                "list services in default",
                "list secrets in default",
                "create a configmap in default",
            ][..],
        ),
    ] {
        let token = token_of(&t.sim, user).await;
        let client = t.plane.client_with_token(&token).await.expect("client");
        let mut seen = Vec::new();
        for _ in 0..80 {
            seen = access(&client).await;
            if seen == expected(allowed) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        println!("{user}: {seen:?}");
        assert_eq!(seen, expected(allowed), "{user} for {ACTIONS:?}");
    }
}

/// The break-glass recipe of the docs' time-bound page, run as written (with two minutes instead of two hours)
/// through kubectl: the on-call member's real token may delete namespaces until the end,
/// and is Forbidden after it.
#[tokio::test]
async fn the_break_glass_recipe_grants_cluster_admin_until_its_end_and_not_after() {
    let _world = ONE_WORLD_AT_A_TIME.lock().await;
    let t = tutorial("").await;
    let page = std::fs::read_to_string(
        okta_rbac_testenv::paths::checkout().join("docs/usage/time-bound.md"),
    )
    .expect("docs/usage/time-bound.md");
    let block = page
        .split("<!-- break-glass:")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|rest| rest.split("\n```").next())
        .expect("the break-glass block in docs/usage/time-bound.md");
    assert!(block.contains("'+2 hours'"), "{block}");
    let script = block.replace("'+2 hours'", "'+2 minutes'");

    let id = t
        .sim
        .create_group("k8s-oncall", GroupType::OktaGroup)
        .expect("group");
    t.sim.add_member(&id, "carol@example.com").expect("member");
    let carol = token_of(&t.sim, "carol@example.com").await;
    let server = t.plane.server_url().to_string();
    let ca = t.plane.dir().join("ca.crt");
    // kubectl runs off the test's thread: the local Okta answering the apiserver's key
    // fetches lives on it.
    let can_carol = |verb: &'static str, resource: &'static str| {
        let (server, ca, carol) = (server.clone(), ca.clone(), carol.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                let output = Command::new(controlplane_bin_dir().join("kubectl"))
                    .args(["--server", &server, "--certificate-authority"])
                    .arg(&ca)
                    .args(["--token", &carol, "auth", "can-i", verb, resource])
                    .output()
                    .expect("kubectl");
                String::from_utf8_lossy(&output.stdout).trim().to_string()
            })
            .await
            .expect("kubectl task")
        }
    };
    // The apiserver's OIDC authenticator may still be fetching the issuer's keys.
    let before = eventually(
        Duration::from_secs(30),
        "carol's token is accepted",
        || async {
            Some(can_carol("delete", "namespaces").await).filter(|answer| !answer.is_empty())
        },
    )
    .await;
    assert_eq!(before, "no", "nothing before the recipe");

    let path = format!(
        "{}:{}",
        controlplane_bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let kubeconfig = t.plane.kubeconfig_path().to_path_buf();
    let applied = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .env("KUBECONFIG", kubeconfig)
            .env("PATH", path)
            .output()
            .expect("bash")
    })
    .await
    .expect("bash task");
    assert!(
        applied.status.success(),
        "the recipe: {}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let client = t.plane.client().await.expect("client");
    let active = wait_condition(
        &client,
        "break-glass-oncall",
        "Active",
        "True",
        Some("Active"),
    )
    .await;
    let end = active
        .spec
        .end_time
        .clone()
        .expect("the recipe sets an end")
        .0;
    eventually(
        Duration::from_secs(20),
        "carol may delete namespaces",
        || async { (can_carol("delete", "namespaces").await == "yes").then_some(()) },
    )
    .await;
    let wait = end.duration_since(k8s_openapi::jiff::Timestamp::now());
    println!(
        "carol is cluster-admin; the grant ends in {:.0} s",
        wait.as_secs_f64()
    );
    assert!(
        wait > k8s_openapi::jiff::SignedDuration::from_secs(60),
        "about two minutes left: {wait:?}"
    );
    tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
    eventually(
        Duration::from_secs(3),
        "carol is Forbidden after the end",
        || async { (can_carol("delete", "namespaces").await == "no").then_some(()) },
    )
    .await;
    let over = wait_condition(
        &client,
        "break-glass-oncall",
        "Active",
        "False",
        Some("Expired"),
    )
    .await;
    assert_eq!(
        over.status.expect("status").binding_count,
        0,
        "no binding is left"
    );
}

/// A grant narrowed while another tool's finalizer holds the broad binding: bob's real
/// token still passes (RBAC honours a binding until it is gone), and the status says so
/// rather than Ready; once the finalizer is removed, both agree again.
#[tokio::test]
async fn a_narrowed_grant_held_by_a_finalizer_is_reported_as_bobs_token_sees_it() {
    use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
    use kube::api::{ListParams, Patch, PatchParams};
    let _world = ONE_WORLD_AT_A_TIME.lock().await;
    let t = tutorial("").await;
    let client = t.plane.client().await.expect("client");
    let objects: Api<OktaGroupBinding> = Api::all(client.clone());
    let broad: OktaGroupBinding = serde_json::from_value(serde_json::json!({
        "apiVersion": "oktarbac.io/v1alpha1", "kind": "OktaGroupBinding",
        "metadata": {"name": "bob-broad"},
        "spec": {"group": "k8s-restricted-users", "clusterRoleBindings": [{"clusterRole": "cluster-admin"}]},
    }))
    .expect("object");
    objects
        .create(&Default::default(), &broad)
        .await
        .expect("create");
    wait_condition(&client, "bob-broad", "Ready", "True", Some("Ready")).await;
    let bob = token_of(&t.sim, "bob@example.com").await;
    let server = t.plane.server_url().to_string();
    let ca = t.plane.dir().join("ca.crt");
    let can_bob = |verb: &'static str, resource: &'static str| {
        let (server, ca, bob) = (server.clone(), ca.clone(), bob.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                let output = Command::new(controlplane_bin_dir().join("kubectl"))
                    .args(["--server", &server, "--certificate-authority"])
                    .arg(&ca)
                    .args(["--token", &bob, "auth", "can-i", verb, resource])
                    .output()
                    .expect("kubectl");
                String::from_utf8_lossy(&output.stdout).trim().to_string()
            })
            .await
            .expect("kubectl task")
        }
    };
    eventually(
        Duration::from_secs(30),
        "bob may delete namespaces",
        || async { (can_bob("delete", "namespaces").await == "yes").then_some(()) },
    )
    .await;

    let crbs: Api<ClusterRoleBinding> = Api::all(client.clone());
    let held = crbs
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=okta-rbac-operator"))
        .await
        .expect("list")
        .items
        .into_iter()
        .find(|b| {
            b.role_ref.name == "cluster-admin"
                && b.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.contains("bob-broad"))
        })
        .expect("the cluster-admin binding")
        .metadata
        .name
        .expect("name");
    let finalizers = |value: serde_json::Value| {
        Patch::Merge(serde_json::json!({"metadata": {"finalizers": value}}))
    };
    crbs.patch(
        &held,
        &PatchParams::default(),
        &finalizers(serde_json::json!(["audit.example.com/hold"])),
    )
    .await
    .expect("an audit tool's finalizer");
    objects
        .patch(
            "bob-broad",
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"spec": {"clusterRoleBindings": [{"clusterRole": "view"}]}}),
            ),
        )
        .await
        .expect("narrow to view");
    let status = wait_condition(
        &client,
        "bob-broad",
        "Ready",
        "False",
        Some("BindingTerminating"),
    )
    .await;
    let message = status
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "BindingsApplied"))
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("ClusterRole/cluster-admin") && message.contains("audit.example.com/hold"),
        "{message}"
    );
    assert_eq!(
        can_bob("delete", "namespaces").await,
        "yes",
        "what the status says is what bob's token gets: the broad binding still grants"
    );

    crbs.patch(
        &held,
        &PatchParams::default(),
        &finalizers(serde_json::Value::Null),
    )
    .await
    .expect("the audit tool lets go");
    wait_condition(&client, "bob-broad", "Ready", "True", Some("Ready")).await;
    eventually(
        Duration::from_secs(10),
        "bob may no longer delete namespaces",
        || async { (can_bob("delete", "namespaces").await == "no").then_some(()) },
    )
    .await;
    assert_eq!(can_bob("list", "pods").await, "yes", "view remains");
}

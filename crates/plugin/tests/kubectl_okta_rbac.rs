//! `kubectl okta-rbac`, run by real kubectl with the plugin on its PATH, against the control
//! plane that trusts the local Okta with the example org, the operator and its samples:
//! every example user explained, who-can, a narrowed claim filter, Okta absent, refusing,
//! or not knowing the user, and what tokens issued before a change in Okta still get, with
//! and without the revocation authorizer, as real tokens get it.

use okta_rbac_demo::Demo;
use okta_rbac_testenv::paths::{controlplane_bin_dir, operator_binary};
use okta_sim::seed::{ClaimFilterType, GroupsClaim};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One world for every test of this binary; they read it, and the one that narrows the
/// claim filter puts it back.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const OPERATOR_TOKEN: &str = "00simulated-operator-token";

struct World {
    demo: Demo,
    token_file: PathBuf,
    ca_file: PathBuf,
}

async fn world() -> World {
    let binary = operator_binary().expect("the operator binary");
    world_of(Demo::start("", &binary).await.expect("the example world"))
}

fn world_of(demo: Demo) -> World {
    let token_file = demo.plane.dir().join("okta-token");
    std::fs::write(&token_file, OPERATOR_TOKEN).expect("token file");
    let ca_file = demo.plane.dir().join("okta-ca.pem");
    demo.sim.write_ca(&ca_file).expect("CA");
    World {
        demo,
        token_file,
        ca_file,
    }
}

struct Answer {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

fn plugin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_kubectl-okta_rbac"))
        .parent()
        .expect("the plugin's directory")
        .to_path_buf()
}

impl World {
    fn okta_flags(&self) -> Vec<String> {
        vec![
            format!("--okta-org-url={}", self.demo.sim.base_url()),
            format!("--okta-token-file={}", self.token_file.display()),
            format!("--okta-ca-file={}", self.ca_file.display()),
        ]
    }

    /// `kubectl okta-rbac ARGS`, as a person would type it, off the test's thread (the
    /// local Okta answers on it).
    async fn kubectl(&self, args: Vec<String>) -> Answer {
        let path = format!(
            "{}:{}:{}",
            plugin_dir().display(),
            controlplane_bin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let kubeconfig = self.demo.plane.kubeconfig_path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let output = Command::new(controlplane_bin_dir().join("kubectl"))
                .arg("okta-rbac")
                .args(&args)
                .env("PATH", path)
                .env("KUBECONFIG", kubeconfig)
                .env_remove("OKTA_API_TOKEN")
                .env_remove("OKTA_ORG_URL")
                .output()
                .expect("kubectl");
            let answer = Answer {
                code: output.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            };
            println!(
                "$ kubectl okta-rbac {}\n{}{}",
                args.join(" "),
                answer.stdout,
                answer.stderr
            );
            answer
        })
        .await
        .expect("kubectl task")
    }

    async fn explain(&self, user: &str, extra: &[&str]) -> Answer {
        let mut args = vec!["explain".to_string(), user.to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(self.okta_flags());
        self.kubectl(args).await
    }
}

fn check<'a>(explanation: &'a Value, check: &str) -> &'a Value {
    explanation["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no check {check}: {explanation}"))
}

fn group<'a>(explanation: &'a Value, name: &str) -> &'a Value {
    explanation["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("no group {name}: {explanation}"))
}

#[tokio::test]
async fn each_example_user_is_explained_and_who_can_names_the_groups() {
    let _one = ONE_AT_A_TIME.lock().await;
    let w = world().await;

    // alice: k8s-admins reaches the token and is cluster-admin.
    let alice = w.explain("alice@example.com", &[]).await;
    assert_eq!(alice.code, 0, "every check allowed");
    assert!(alice.stdout.contains("ACTIVE in Okta"), "{}", alice.stdout);
    assert!(
        alice.stdout.contains("(OktaGroupBinding k8s-admins)"),
        "{}",
        alice.stdout
    );
    let alice = w.explain("alice@example.com", &["-o", "json"]).await.json();
    assert_eq!(group(&alice, "k8s-admins")["inToken"], true);
    assert_eq!(
        group(&alice, "k8s-admins")["objects"][0]["name"],
        "k8s-admins"
    );
    assert_eq!(group(&alice, "engineering")["inToken"], false);

    // bob: reads pods and services in default, nothing else.
    let bob = w.explain("bob@example.com", &["-o", "json"]).await;
    assert_eq!(bob.code, 1, "a check denied");
    let bob = bob.json();
    let pods = check(&bob, "list pods -n default");
    assert_eq!(pods["allowed"], true);
    assert!(
        pods["why"]
            .as_str()
            .expect("why")
            .contains("OktaGroupBinding k8s-restricted-users")
    );
    let secrets = check(&bob, "list secrets -n default");
    assert_eq!(secrets["allowed"], false);
    assert!(
        secrets["why"].as_str().expect("why").contains(
            "no OktaGroupBinding grants it to the groups in the token (k8s-restricted-users)"
        ),
        "{secrets}"
    );

    // carol: only engineering, which the claim filter leaves out.
    let carol = w.explain("carol@example.com", &["-o", "json"]).await.json();
    assert!(
        group(&carol, "engineering")["token"]
            .as_str()
            .expect("token")
            .contains("filtered out by STARTS_WITH \"k8s-\""),
        "{carol}"
    );
    assert!(
        check(&carol, "list pods -n default")["why"]
            .as_str()
            .expect("why")
            .contains("no group of the user reaches the token")
    );

    // dave: platform-admins never reaches a token.
    let dave = w.explain("dave@example.com", &[]).await;
    assert_eq!(dave.code, 1);
    assert!(
        dave.stdout.contains("platform-admins") && dave.stdout.contains("no: filtered out"),
        "{}",
        dave.stdout
    );

    // erin: in k8s-restricted-users, but suspended: Okta gives her no token.
    let erin = w.explain("erin@example.com", &["-o", "yaml"]).await;
    assert_eq!(erin.code, 1);
    let erin: Value = serde_yaml_ng::from_str(&erin.stdout).expect("yaml");
    let pods = check(&erin, "list pods -n default");
    assert_eq!(pods["allowed"], false);
    assert!(
        pods["why"]
            .as_str()
            .expect("why")
            .contains("is SUSPENDED in Okta"),
        "{pods}"
    );

    // Nobody Okta knows.
    let nobody = w.explain("nobody@example.com", &[]).await;
    assert_eq!(nobody.code, 1);
    assert!(
        nobody.stdout.contains("is not a user in Okta"),
        "{}",
        nobody.stdout
    );

    // who-can: everything (cluster-admin), and reading pods in default.
    let mut args: Vec<String> = ["who-can", "*", "*", "-o", "json"]
        .map(String::from)
        .to_vec();
    args.extend(w.okta_flags());
    let everything = w.kubectl(args).await;
    assert_eq!(everything.code, 0);
    let holders = everything.json()["holders"]
        .as_array()
        .expect("holders")
        .clone();
    let admins = holders
        .iter()
        .find(|h| h["oktaGroup"] == "k8s-admins")
        .expect("k8s-admins holds everything");
    assert_eq!(admins["oktaGroupBinding"], "k8s-admins");
    assert_eq!(admins["members"], serde_json::json!(["alice@example.com"]));
    let masters = holders
        .iter()
        .find(|h| h["name"] == "system:masters")
        .expect("system:masters, not managed");
    assert!(masters.get("oktaGroupBinding").is_none());
    let mut args: Vec<String> = ["who-can", "list", "pods", "-n", "default"]
        .map(String::from)
        .to_vec();
    args.extend(w.okta_flags());
    let pods = w.kubectl(args).await;
    assert_eq!(pods.code, 0);
    assert!(
        pods.stdout
            .contains("OktaGroupBinding k8s-restricted-users (Okta group k8s-restricted-users)")
            && pods.stdout.contains("bob@example.com")
            && !pods.stdout.contains("erin@example.com"),
        "active members only: {}",
        pods.stdout
    );
    assert!(
        pods.stdout.contains("not managed by okta-rbac-operator"),
        "{}",
        pods.stdout
    );

    // A narrowed claim filter changes the answer, and says why.
    w.demo
        .sim
        .set_groups_claim(
            "default",
            GroupsClaim {
                filter_type: ClaimFilterType::Equals,
                filter_value: "k8s-admins".into(),
                ..GroupsClaim::default()
            },
        )
        .expect("narrow the filter");
    let narrowed = w.explain("bob@example.com", &["-o", "json"]).await.json();
    w.demo
        .sim
        .set_groups_claim("default", GroupsClaim::default())
        .expect("restore the filter");
    let pods = check(&narrowed, "list pods -n default");
    assert_eq!(pods["allowed"], false);
    assert!(
        pods["why"].as_str().expect("why").contains(
            "k8s-restricted-users is not in the token: no: filtered out by EQUALS \"k8s-admins\""
        ),
        "{pods}"
    );
}

#[tokio::test]
async fn without_okta_or_with_wrong_credentials_the_cluster_side_is_answered_and_the_rest_named() {
    let _one = ONE_AT_A_TIME.lock().await;
    let w = world().await;
    let check_pods = ["--check", "list pods -n default"].map(String::from);

    // No Okta at all: what could not be checked is said; groups can be given by hand.
    let mut args = vec!["explain".to_string(), "bob@example.com".to_string()];
    args.extend(check_pods.clone());
    let bare = w.kubectl(args.clone()).await;
    assert_eq!(bare.code, 1, "bob's name alone is granted nothing");
    assert!(
        bare.stdout.contains("Not checked: the user's Okta groups")
            && bare.stdout.contains("no Okta org"),
        "{}",
        bare.stdout
    );
    args.push("--groups=k8s-restricted-users".into());
    let given = w.kubectl(args).await;
    assert_eq!(
        given.code, 0,
        "with the groups given, the apiserver allows it"
    );

    // Wrong credentials: the cluster side still answered, Okta's refusal named, exit 3.
    let wrong = w.demo.plane.dir().join("wrong-token");
    std::fs::write(&wrong, "00not-a-token").expect("file");
    let mut args = vec!["explain".to_string(), "bob@example.com".to_string()];
    args.extend(check_pods);
    args.extend([
        format!("--okta-org-url={}", w.demo.sim.base_url()),
        format!("--okta-token-file={}", wrong.display()),
        format!("--okta-ca-file={}", w.ca_file.display()),
    ]);
    let refused = w.kubectl(args).await;
    assert_eq!(refused.code, 3, "partial answer");
    assert!(
        refused
            .stdout
            .contains("Okta could not be asked: Okta answered 401 E0000011"),
        "{}",
        refused.stdout
    );

    // A question that cannot be asked.
    let bad = w
        .kubectl(
            ["explain", "bob@example.com", "--check", "list"]
                .map(String::from)
                .to_vec(),
        )
        .await;
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("expected VERB RESOURCE"),
        "{}",
        bad.stderr
    );
}

/// What `kubectl okta-rbac` says of tokens issued before bob left k8s-restricted-users and
/// alice was suspended, against what those tokens really get from the apiserver.
async fn earlier_tokens_as_the_plugin_tells(w: &World) -> (Value, Value) {
    let bob = w
        .explain(
            "bob@example.com",
            &["--check", "list pods -n default", "-o", "json"],
        )
        .await
        .json();
    let mut args: Vec<String> = ["who-can", "delete", "namespaces", "-o", "json"]
        .map(String::from)
        .to_vec();
    args.extend(w.okta_flags());
    let admins = w.kubectl(args).await.json()["holders"]
        .as_array()
        .expect("holders")
        .iter()
        .find(|h| h["oktaGroup"] == "k8s-admins")
        .expect("k8s-admins may delete namespaces")
        .clone();
    (bob, admins)
}

/// The status a token gets listing pods in default, or namespaces.
async fn answer(client: &kube::Client, what: &str) -> u16 {
    use k8s_openapi::api::core::v1::{Namespace, Pod};
    use kube::api::{Api, ListParams};
    let params = ListParams::default().limit(1);
    let result = match what {
        "pods" => Api::<Pod>::namespaced(client.clone(), "default")
            .list(&params)
            .await
            .map(|_| ()),
        _ => Api::<Namespace>::all(client.clone())
            .list(&params)
            .await
            .map(|_| ()),
    };
    match result {
        Ok(()) => 200,
        Err(kube::Error::Api(status)) => status.code,
        Err(other) => panic!("no answer from the apiserver: {other}"),
    }
}

async fn token_of(demo: &Demo, user: &str) -> kube::Client {
    demo.client_of(user)
        .await
        .expect("a client with the user's ID token")
}

/// Removes bob from k8s-restricted-users and suspends alice, with tokens of both issued
/// before; gives back their clients.
async fn take_access_away(demo: &Demo) -> (kube::Client, kube::Client) {
    let bob = token_of(demo, "bob@example.com").await;
    let alice = token_of(demo, "alice@example.com").await;
    assert_eq!(answer(&bob, "pods").await, 200);
    assert_eq!(answer(&alice, "namespaces").await, 200);
    let group = demo
        .sim
        .group_id("k8s-restricted-users", okta_sim::GroupType::OktaGroup)
        .expect("the example group");
    demo.sim
        .remove_member(&group, "bob@example.com")
        .expect("remove bob");
    demo.sim
        .user_lifecycle("alice@example.com", okta_sim::Lifecycle::Suspend)
        .expect("suspend alice");
    (bob, alice)
}

#[tokio::test]
async fn tokens_issued_before_okta_took_access_away_are_told_as_the_apiserver_answers_them() {
    let _one = ONE_AT_A_TIME.lock().await;
    let binary = operator_binary().expect("the operator binary");
    let fast_log = ["--okta-system-log-interval", "2s"];

    // Group mode alone: the old tokens keep their access until they expire, and the
    // plugin says so, with the time.
    let demo = Demo::start_with("", &binary, &fast_log)
        .await
        .expect("the example world");
    let (bob_token, alice_token) = take_access_away(&demo).await;
    // Long enough for the operator to read the log: it has nothing to revoke here.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(answer(&bob_token, "pods").await, 200, "bob's old token");
    assert_eq!(
        answer(&alice_token, "namespaces").await,
        200,
        "alice's old token"
    );
    let w = world_of(demo);
    let (bob, admins) = earlier_tokens_as_the_plugin_tells(&w).await;
    assert_eq!(
        check(&bob, "list pods -n default")["allowed"],
        false,
        "a new token: {bob}"
    );
    let earlier = &bob["earlierTokens"];
    assert_eq!(
        earlier["changes"][0]["what"], "left k8s-restricted-users",
        "{bob}"
    );
    assert_eq!(
        earlier["groups"],
        serde_json::json!(["k8s-restricted-users"])
    );
    let old = &earlier["checks"][0];
    assert_eq!(old["allowed"], true, "as bob's old token gets it: {old}");
    let until = earlier["validUntil"].as_str().expect("validUntil");
    assert!(
        old["why"]
            .as_str()
            .expect("why")
            .contains(&format!("until {until}")),
        "{old}"
    );
    assert_eq!(admins["members"], serde_json::json!([]), "{admins}");
    let alice = &admins["formerMembers"][0];
    assert_eq!(alice["user"], "alice@example.com", "{admins}");
    assert_eq!(alice["change"]["what"], "suspended");
    assert_eq!(
        alice["allowed"], true,
        "as alice's old token gets it: {alice}"
    );
    let mut args: Vec<String> = ["who-can", "delete", "namespaces"]
        .map(String::from)
        .to_vec();
    args.extend(w.okta_flags());
    let table = w.kubectl(args).await.stdout;
    assert!(
        table.contains("Tokens issued before a change in Okta")
            && table.contains("alice@example.com")
            && table.contains("suspended at"),
        "{table}"
    );
    w.demo.stop().expect("the operator stops");

    // With the revocation authorizer: the same tokens are Forbidden, and the plugin says
    // it denies them, in its words.
    let demo = Demo::start_with_authorizer("", &binary, "no-opinion", &fast_log)
        .await
        .expect("the example world with the authorizer");
    let (bob_token, alice_token) = take_access_away(&demo).await;
    okta_rbac_testenv::wait::eventually(
        std::time::Duration::from_secs(30),
        "the old tokens are Forbidden",
        || async {
            (answer(&bob_token, "pods").await == 403
                && answer(&alice_token, "namespaces").await == 403)
                .then_some(())
        },
    )
    .await;
    let w = world_of(demo);
    let (bob, admins) = earlier_tokens_as_the_plugin_tells(&w).await;
    let old = &bob["earlierTokens"]["checks"][0];
    assert_eq!(old["allowed"], false, "as bob's old token gets it: {old}");
    assert!(
        old["why"]
            .as_str()
            .expect("why")
            .contains("bob@example.com left k8s-restricted-users in Okta at"),
        "{old}"
    );
    let alice = &admins["formerMembers"][0];
    assert_eq!(
        alice["allowed"], false,
        "as alice's old token gets it: {alice}"
    );
    let why = alice["why"].as_str().expect("why").to_lowercase();
    assert!(
        why.starts_with("denied: ")
            && why.contains("alice@example.com")
            && why.contains("suspended"),
        "{alice}"
    );
    w.demo.stop().expect("the operator stops");
}

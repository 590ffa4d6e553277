//! The operator's Okta credentials as a real org has them: a service app with a private
//! key (`private_key_jwt`, Okta's recommendation), with and without DPoP-bound tokens,
//! through trouble at the token endpoint; API tokens and keys that rotate under the
//! running process; a certificate it cannot trust.
//!
//! Each test runs its own local Okta and operator on the shared control plane, one test
//! at a time (two operators would both reconcile every object).

mod common;

use common::{
    apply_binding, condition, never_leaves_ready, owned_bindings, view_spec, wait_condition,
};
use kube::api::{Api, DeleteParams};
use okta_rbac_api::OktaGroupBinding;
use okta_rbac_testenv::{ControlPlane, OperatorLaunch, OperatorProcess, unique_name};
use okta_sim::seed::{SeedApiToken, SeedClient};
use okta_sim::{FaultSettings, GroupType, OAuthSettings, OktaSim, Seed, SimOptions};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use std::path::PathBuf;
use std::time::{Duration, Instant};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const DPOP_APP: &str = "0oa-requires-dpop";
const BEARER_APP: &str = "0oa-bearer-tokens";
const RESYNC: Duration = Duration::from_secs(3);
const FIRST_TOKEN: &str = "00first-api-token";
const SECOND_TOKEN: &str = "00second-api-token";

struct Key {
    private_pem: String,
    public_pem: String,
}

fn key() -> Key {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("key");
    Key {
        private_pem: key.to_pkcs8_pem(LineEnding::LF).expect("pkcs8").to_string(),
        public_pem: key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("spki"),
    }
}

/// A local Okta with both kinds of service app, one key for both.
struct World {
    plane: &'static ControlPlane,
    sim: OktaSim,
    client: kube::Client,
    dir: PathBuf,
}

async fn world(oauth: OAuthSettings) -> World {
    let plane = ControlPlane::shared(|| vec![<OktaGroupBinding as kube::CustomResourceExt>::crd()]);
    let key = key();
    let seed = Seed {
        clients: vec![
            SeedClient {
                dpop_bound_access_tokens: true,
                ..SeedClient::service_app(DPOP_APP, key.public_pem.clone(), &["okta.groups.read"])
            },
            SeedClient::service_app(BEARER_APP, key.public_pem.clone(), &["okta.groups.read"]),
        ],
        api_tokens: vec![SeedApiToken {
            name: "first".into(),
            token: FIRST_TOKEN.into(),
            scopes: Some(vec!["okta.groups.read".into()]),
        }],
        oauth,
        ..Default::default()
    };
    let sim = OktaSim::start(SimOptions::new(seed))
        .await
        .expect("local Okta");
    let dir = plane.dir().join(unique_name("service-app"));
    std::fs::create_dir_all(&dir).expect("dir");
    sim.write_ca(&dir.join("okta-ca.pem")).expect("CA");
    std::fs::write(dir.join("private-key"), &key.private_pem).expect("key file");
    std::fs::write(dir.join("token"), FIRST_TOKEN).expect("token file");
    World {
        plane,
        client: plane.client().await.expect("client"),
        sim,
        dir,
    }
}

impl World {
    /// The operator as `client_id`, its key from a file, with extra flags.
    async fn operator(&self, client_id: &str, extra: &[&str]) -> OperatorProcess {
        self.operator_trusting(true, client_id, extra).await
    }

    /// The same, trusting the local Okta's CA or not.
    async fn operator_trusting(
        &self,
        trust_okta_ca: bool,
        client_id: &str,
        extra: &[&str],
    ) -> OperatorProcess {
        let mut launch = OperatorLaunch::new(
            common::operator_binary(),
            self.plane.kubeconfig_path(),
            self.sim.base_url(),
        );
        if trust_okta_ca {
            launch = launch.okta_ca_file(&self.dir.join("okta-ca.pem"));
        }
        let mut operator = launch
            .identity(&unique_name("service-app-operator"))
            .args([
                "--okta-client-id".to_string(),
                client_id.to_string(),
                "--okta-private-key-file".to_string(),
                self.dir.join("private-key").display().to_string(),
                "--resync-interval".to_string(),
                format!("{}s", RESYNC.as_secs()),
                "--okta-system-log=false".to_string(),
            ])
            .args(extra.iter().copied())
            .start(&self.dir.join("operator.log"))
            .expect("the operator starts");
        operator
            .wait_ready(Duration::from_secs(60))
            .await
            .expect("ready");
        operator
    }

    /// A group in Okta and an object granting it `view`: the object's name.
    async fn new_object(&self, prefix: &str) -> String {
        let group = unique_name(&format!("k8s-{prefix}"));
        self.sim
            .create_group(&group, GroupType::OktaGroup)
            .expect("group");
        let name = unique_name(prefix);
        apply_binding(&self.client, &name, view_spec(&group)).await;
        name
    }

    /// A group in Okta and an object granting it `view`, Ready.
    async fn ready_object(&self, prefix: &str) -> OktaGroupBinding {
        let name = self.new_object(prefix).await;
        wait_condition(&self.client, &name, "Ready", "True", Some("Ready")).await
    }

    /// Waits until the object's group is unverified for `reason`: the object, and the
    /// condition's message.
    async fn unverified(&self, name: &str, reason: &str) -> (OktaGroupBinding, String) {
        let object =
            wait_condition(&self.client, name, "GroupVerified", "Unknown", Some(reason)).await;
        let message = condition(&object, "GroupVerified")
            .expect("condition")
            .message
            .clone();
        (object, message)
    }

    /// The schemes the Management API saw, each once, in order.
    fn schemes(&self) -> Vec<String> {
        let mut schemes: Vec<String> = Vec::new();
        for request in self.sim.requests() {
            if !request.path.starts_with("/api/v1/") {
                continue;
            }
            let Some(caller) = request.caller else {
                continue;
            };
            if !schemes.contains(&caller) {
                schemes.push(caller);
            }
        }
        schemes
    }

    async fn delete(&self, objects: &[&OktaGroupBinding]) {
        let api: Api<OktaGroupBinding> = Api::all(self.client.clone());
        for object in objects {
            let name = object.metadata.name.as_deref().expect("name");
            let _ = api.delete(name, &DeleteParams::default()).await;
        }
    }
}

#[tokio::test]
async fn a_service_app_that_requires_dpop_is_used_with_dpop_and_one_that_does_not_with_bearer() {
    let _one_at_a_time = SERIAL.lock().await;
    let world = world(OAuthSettings::default()).await;
    for (app, scheme) in [(DPOP_APP, "DPoP"), (BEARER_APP, "Bearer")] {
        world.sim.clear_requests();
        let operator = world.operator(app, &[]).await;
        let object = world.ready_object("app-kind").await;
        let (crbs, _) = owned_bindings(&world.client, &object).await;
        assert_eq!(crbs.len(), 1, "{app}");
        assert_eq!(world.schemes(), [format!("{scheme} {app}")], "{app}");
        let token_answers: Vec<u16> = world
            .sim
            .requests()
            .iter()
            .filter(|r| r.path == "/oauth2/v1/token")
            .map(|r| r.status)
            .collect();
        let expected: &[u16] = if scheme == "DPoP" {
            &[400, 200]
        } else {
            &[200]
        };
        assert_eq!(
            token_answers, expected,
            "{app}: the nonce challenge, then a token"
        );
        drop(operator);
        world.delete(&[&object]).await;
    }

    // DPoP forced off against an app that requires it: refused, and said so.
    let operator = world.operator(DPOP_APP, &["--okta-dpop=off"]).await;
    let name = world.new_object("dpop-off").await;
    let (refused, message) = world.unverified(&name, "OktaUnauthorized").await;
    assert!(
        message.contains("invalid_dpop_proof")
            && message.contains("The DPoP proof JWT header is missing."),
        "Okta's own words reach the status: {message}"
    );
    drop(operator);
    world.delete(&[&refused]).await;
}

/// Trouble at the token endpoint is Okta being unavailable, not the credentials being
/// refused: objects keep their bindings, say OktaServerError, and are Ready again within
/// seconds of the end. Once at start (no token yet) and once at renewal.
#[tokio::test]
async fn an_outage_of_the_token_endpoint_keeps_bindings_and_is_not_a_refusal() {
    let _one_at_a_time = SERIAL.lock().await;
    // Tokens that last 8 s: the second outage falls on a renewal.
    let world = world(OAuthSettings {
        access_token_seconds: 8,
        ..Default::default()
    })
    .await;
    let first = world.operator(DPOP_APP, &[]).await;
    let object = world.ready_object("token-outage").await;
    drop(first);

    // At start: no token yet.
    outage(&world.sim);
    let started = Instant::now();
    let operator = world.operator(DPOP_APP, &[]).await;
    rides_out(&world, &object, "at start", started).await;
    drop(operator);

    // At renewal: a token in hand, and the outage outlasts it.
    let _operator = world.operator(DPOP_APP, &[]).await;
    world.sim.clear_requests();
    wait_for_token(&world.sim).await;
    outage(&world.sim);
    rides_out(&world, &object, "at token renewal", Instant::now()).await;
    world.delete(&[&object]).await;
}

const OUTAGE: Duration = Duration::from_secs(15);

fn outage(sim: &OktaSim) {
    sim.set_faults(FaultSettings {
        outage_seconds: OUTAGE.as_secs(),
        buckets: vec!["oauth2-token".into()],
        ..Default::default()
    })
}

/// Through an outage of the token endpoint that began at `started`: the object keeps its
/// binding and never says OktaUnauthorized, says OktaServerError, and is Ready again
/// within seconds of the end.
async fn rides_out(world: &World, object: &OktaGroupBinding, case: &str, started: Instant) {
    let name = object.metadata.name.clone().expect("name");
    let api: Api<OktaGroupBinding> = Api::all(world.client.clone());
    let (_, message) = world.unverified(&name, "OktaServerError").await;
    assert!(message.contains("503"), "{case}: {message}");
    while started.elapsed() < OUTAGE - Duration::from_secs(1) {
        let (crbs, _) = owned_bindings(&world.client, object).await;
        assert_eq!(
            crbs.len(),
            1,
            "{case}: the binding stays through the outage"
        );
        let now = api.get(&name).await.expect("get");
        let reason = condition(&now, "GroupVerified").map(|c| c.reason.as_str());
        assert_ne!(
            reason,
            Some("OktaUnauthorized"),
            "{case}: an outage is no refusal"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ended = started + OUTAGE;
    wait_condition(&world.client, &name, "Ready", "True", Some("Ready")).await;
    let recovery = Instant::now().saturating_duration_since(ended);
    println!("token endpoint outage {case}: Ready {recovery:?} after it ended");
    assert!(
        recovery <= RESYNC + Duration::from_secs(2),
        "{case}: Ready within seconds of the end, took {recovery:?}"
    );
    world.sim.clear_faults();
}

async fn wait_for_token(sim: &OktaSim) {
    okta_rbac_testenv::wait::eventually(Duration::from_secs(30), "a token", || async {
        sim.requests()
            .iter()
            .any(|r| r.path == "/oauth2/v1/token" && r.status == 200)
            .then_some(())
    })
    .await;
}

/// A key rotated as Okta's admins do it: a new key registered with its kid, the files
/// changed, the old key removed. The running operator takes the new key up without a
/// restart, and the object never leaves Ready.
#[tokio::test]
async fn a_rotated_service_app_key_is_taken_up_without_a_restart() {
    let _one_at_a_time = SERIAL.lock().await;
    let world = world(OAuthSettings::default()).await;
    let key_id_file = world.dir.join("key-id");
    let _operator = world
        .operator(
            DPOP_APP,
            &[&format!(
                "--okta-private-key-id-file={}",
                key_id_file.display()
            )],
        )
        .await;
    let object = world.ready_object("key-rotation").await;
    let name = object.metadata.name.clone().expect("name");
    let watch = never_leaves_ready(&world.client, &[&name]);

    let rotated = key();
    world
        .sim
        .add_client_key(DPOP_APP, "key-2", &rotated.public_pem)
        .expect("register the new key");
    std::fs::write(&key_id_file, "key-2").expect("kid file");
    std::fs::write(world.dir.join("private-key"), &rotated.private_pem).expect("key file");
    okta_rbac_testenv::wait::eventually(
        Duration::from_secs(30),
        "a token got with the new key",
        || async {
            world
                .sim
                .requests()
                .iter()
                .any(|r| {
                    r.path == "/oauth2/v1/token"
                        && r.status == 200
                        && r.caller.as_deref() == Some("0oa-requires-dpop kid=key-2")
                })
                .then_some(())
        },
    )
    .await;
    world
        .sim
        .remove_client_key(DPOP_APP, None)
        .expect("remove the old key");
    // New lookups after the old key is gone go through with the new one.
    let after = world.ready_object("after-key-rotation").await;
    tokio::time::sleep(RESYNC * 2).await;
    let left_ready = watch.stop().await;
    assert!(
        left_ready.is_empty(),
        "the object left Ready: {left_ready:?}"
    );
    world.delete(&[&object, &after]).await;
}

/// An API token rotated in its file and the old one revoked at once, before the operator
/// looked at the file again: the refused request is sent again with the new token, and
/// the objects never leave Ready.
#[tokio::test]
async fn a_rotated_api_token_is_used_even_when_the_old_one_is_revoked_at_once() {
    let _one_at_a_time = SERIAL.lock().await;
    let world = world(OAuthSettings::default()).await;
    let token_file = world.dir.join("token");
    let operator = OperatorLaunch::new(
        common::operator_binary(),
        world.plane.kubeconfig_path(),
        world.sim.base_url(),
    )
    .okta_ca_file(&world.dir.join("okta-ca.pem"))
    .identity(&unique_name("token-operator"))
    .args([
        format!("--okta-token-file={}", token_file.display()),
        format!("--resync-interval={}s", RESYNC.as_secs()),
        "--okta-system-log=false".into(),
    ])
    .start(&world.dir.join("operator.log"))
    .expect("the operator starts");
    let mut operator = operator;
    operator
        .wait_ready(Duration::from_secs(60))
        .await
        .expect("ready");
    let object = world.ready_object("token-rotation").await;
    let name = object.metadata.name.clone().expect("name");
    let watch = never_leaves_ready(&world.client, &[&name]);

    world.sim.issue_api_token(
        "second",
        SECOND_TOKEN,
        Some(vec!["okta.groups.read".into()]),
    );
    std::fs::write(&token_file, SECOND_TOKEN).expect("rotate the file");
    world.sim.revoke_api_token(FIRST_TOKEN);
    world.sim.clear_requests();
    let after = world.ready_object("after-token-rotation").await;
    tokio::time::sleep(RESYNC * 2).await;
    let left_ready = watch.stop().await;
    assert!(
        left_ready.is_empty(),
        "the object left Ready: {left_ready:?}"
    );
    let callers: Vec<String> = world
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.status == 200)
        .filter_map(|r| r.caller)
        .collect();
    assert!(
        !callers.is_empty() && callers.iter().all(|c| c == "SSWS second"),
        "after the rotation every answered request used the new token: {callers:?}"
    );
    let metrics = reqwest::get(format!("{}/metrics", operator.metrics_url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l == "okta_rbac_okta_credential_changes_total 1"),
        "{metrics}"
    );
    world.delete(&[&object, &after]).await;
}

/// A revoked key with no replacement: refused (OktaUnauthorized with Okta's words), the
/// binding kept, and the operator's metrics say the credentials are refused.
#[tokio::test]
async fn a_removed_key_is_a_refusal_the_metrics_show() {
    let _one_at_a_time = SERIAL.lock().await;
    let world = world(OAuthSettings {
        access_token_seconds: 5,
        ..Default::default()
    })
    .await;
    let operator = world.operator(BEARER_APP, &[]).await;
    let object = world.ready_object("key-removed").await;
    world
        .sim
        .remove_client_key(BEARER_APP, None)
        .expect("remove the only key");
    let name = object.metadata.name.clone().expect("name");
    let (refused, message) = world.unverified(&name, "OktaUnauthorized").await;
    assert!(message.contains("invalid_client"), "{message}");
    let (crbs, _) = owned_bindings(&world.client, &object).await;
    assert_eq!(
        crbs.len(),
        1,
        "a refusal keeps the binding (unknown, not missing)"
    );
    let metrics = reqwest::get(format!("{}/metrics", operator.metrics_url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l == "okta_rbac_okta_credentials_refused 1"),
        "{metrics}"
    );
    world.delete(&[&refused]).await;
}

/// A certificate the operator cannot trust (a TLS-inspecting proxy's, a private CA not
/// given): the status names the TLS reason, not just "error sending request".
#[tokio::test]
async fn an_untrusted_certificate_is_named_in_the_status() {
    let _one_at_a_time = SERIAL.lock().await;
    let world = world(OAuthSettings::default()).await;
    let _operator = world.operator_trusting(false, BEARER_APP, &[]).await;
    let name = world.new_object("untrusted").await;
    let (object, message) = world.unverified(&name, "OktaUnreachable").await;
    assert!(
        message.contains("invalid peer certificate: UnknownIssuer"),
        "the TLS reason reaches the status: {message}"
    );
    world.delete(&[&object]).await;
}

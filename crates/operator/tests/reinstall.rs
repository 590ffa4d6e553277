//! Removing and reinstalling the operator without locking anyone out: objects deleted
//! with `--cascade=orphan` leave their bindings in place, deleting the CRD then removes
//! nothing else, and after a reinstall an object of the same name adopts the bindings its
//! predecessor left (no Conflict, no moment without access).

mod common;

use common::{view_spec, wait_condition};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{CustomResourceExt, ResourceExt};
use okta_rbac_api::OktaGroupBinding;
use okta_rbac_testenv::{ControlPlane, ControlPlaneOptions, OperatorLaunch, OperatorProcess};
use okta_sim::{OktaSim, Seed, SimOptions};
use std::time::Duration;

const TOKEN: &str = "00reinstall-token";
const GROUP: &str = "k8s-reinstall-admins";
const NAME: &str = "admins";

fn operator(plane: &ControlPlane, sim: &OktaSim, ca: &std::path::Path) -> OperatorProcess {
    OperatorLaunch::new(
        common::operator_binary(),
        plane.kubeconfig_path(),
        sim.base_url(),
    )
    .okta_ca_file(ca)
    .okta_token(TOKEN)
    .args(["--resync-interval", "3s"])
    .start(&plane.dir().join("operator.log"))
    .expect("operator")
}

async fn the_binding(client: &kube::Client) -> Option<ClusterRoleBinding> {
    let params = ListParams::default().labels("app.kubernetes.io/managed-by=okta-rbac-operator");
    Api::<ClusterRoleBinding>::all(client.clone())
        .list(&params)
        .await
        .expect("list")
        .items
        .into_iter()
        .next()
}

async fn create(client: &kube::Client) -> OktaGroupBinding {
    Api::<OktaGroupBinding>::all(client.clone())
        .create(
            &PostParams::default(),
            &OktaGroupBinding::new(NAME, view_spec(GROUP)),
        )
        .await
        .expect("create")
}

#[tokio::test]
async fn orphaned_bindings_survive_an_uninstall_and_are_adopted_after_a_reinstall() {
    let plane = ControlPlane::start(ControlPlaneOptions {
        crds: vec![OktaGroupBinding::crd()],
        ..Default::default()
    })
    .await
    .expect("control plane");
    let sim = OktaSim::start(SimOptions::new(Seed::groups_only(
        TOKEN,
        [GROUP.to_string()],
    )))
    .await
    .expect("local Okta");
    let ca = plane.dir().join("okta-ca.pem");
    sim.write_ca(&ca).expect("CA");
    let client = plane.client().await.expect("client");
    let mut running = operator(&plane, &sim, &ca);

    let first = create(&client).await;
    wait_condition(&client, NAME, "Ready", "True", None).await;
    let before = the_binding(&client).await.expect("the binding");
    assert_eq!(before.owner_references()[0].uid, first.uid().expect("uid"));

    // Uninstall, keeping access: orphan the bindings, stop the operator, delete the CRD.
    let orphaned = plane
        .kubectl(&["delete", "ogb", NAME, "--cascade=orphan", "--wait"], None)
        .expect("kubectl");
    assert!(orphaned.success, "{}", orphaned.stderr);
    common::eventually(
        common::GARBAGE_COLLECTOR_WAIT,
        "the garbage collector orphans the binding",
        || {
            let client = client.clone();
            async move {
                let binding = the_binding(&client).await?;
                binding.owner_references().is_empty().then_some(binding)
            }
        },
    )
    .await;
    running.terminate(Duration::from_secs(10)).expect("stop");
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    crds.delete("oktagroupbindings.oktarbac.io", &DeleteParams::default())
        .await
        .expect("delete the CRD");
    common::eventually(Duration::from_secs(60), "the CRD is gone", || {
        let crds = crds.clone();
        async move {
            crds.get_opt("oktagroupbindings.oktarbac.io")
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let kept = the_binding(&client)
        .await
        .expect("the group keeps its access with the operator removed");
    assert_eq!(kept.metadata.uid, before.metadata.uid);

    // Reinstall: the same object adopts the binding instead of reporting a Conflict.
    plane
        .install_crds(&[OktaGroupBinding::crd()])
        .await
        .expect("CRD");
    let _running = operator(&plane, &sim, &ca);
    let second = create(&client).await;
    let ready = wait_condition(&client, NAME, "Ready", "True", None).await;
    let adopted = common::eventually(Duration::from_secs(30), "the binding is adopted", || {
        let client = client.clone();
        let uid = second.uid().expect("uid");
        async move {
            let binding = the_binding(&client).await?;
            (binding.owner_references().first()?.uid == uid).then_some(binding)
        }
    })
    .await;
    assert_eq!(
        adopted.metadata.uid, before.metadata.uid,
        "the same binding, never deleted"
    );
    assert_eq!(
        adopted.labels()["oktarbac.io/owner-uid"],
        second.uid().expect("uid")
    );
    assert_eq!(ready.status.expect("status").binding_count, 1);
}

//! A world of a test's own: a control plane (whose apiserver the test may restart), a
//! local Okta of OKTA_GROUPs and an operator launched by the test with its own flags.

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResourceExt;
use kube::api::{Api, ListParams, PostParams};
use okta_rbac_api::{OktaGroupBinding, OktaGroupBindingSpec};
use okta_rbac_testenv::{ControlPlane, ControlPlaneOptions, OperatorLaunch, OperatorProcess};
use okta_sim::{GroupType, OktaSim, Seed, SimOptions, UserStatus};
use std::path::PathBuf;
use std::time::Duration;

const TOKEN: &str = "00own-world-token";
const MANAGED: &str = "app.kubernetes.io/managed-by=okta-rbac-operator";

pub struct World {
    pub plane: ControlPlane,
    pub sim: OktaSim,
    pub client: kube::Client,
    pub ca: PathBuf,
}

impl World {
    pub async fn start() -> Self {
        let plane = ControlPlane::start(ControlPlaneOptions {
            crds: vec![OktaGroupBinding::crd()],
            ..Default::default()
        })
        .await
        .expect("control plane");
        let sim = OktaSim::start(SimOptions::new(Seed::groups_only(TOKEN, [])))
            .await
            .expect("local Okta");
        let ca = plane.dir().join("okta-ca.pem");
        sim.write_ca(&ca).expect("CA");
        World {
            client: plane.client().await.expect("client"),
            plane,
            sim,
            ca,
        }
    }

    /// The operator's launch, with these flags after the Okta ones.
    pub fn launch(&self, identity: &str, args: &[&str]) -> OperatorLaunch {
        self.launch_as(identity, self.plane.kubeconfig_path(), args)
    }

    /// The same, as whoever `kubeconfig` authenticates.
    pub fn launch_as(
        &self,
        identity: &str,
        kubeconfig: &std::path::Path,
        args: &[&str],
    ) -> OperatorLaunch {
        OperatorLaunch::new(super::operator_binary(), kubeconfig, self.sim.base_url())
            .okta_ca_file(&self.ca)
            .okta_token(TOKEN)
            .identity(identity)
            .args(args.iter().copied())
    }

    /// The operator with these flags, ready.
    pub async fn operator(&self, args: &[&str]) -> OperatorProcess {
        let mut operator = self
            .launch("own-world-operator", args)
            .start(&self.plane.dir().join("operator.log"))
            .expect("the operator starts");
        operator
            .wait_ready(Duration::from_secs(60))
            .await
            .expect("ready");
        operator
    }

    /// An Okta group with one active member.
    pub fn group(&self, name: &str) -> String {
        let id = self
            .sim
            .create_group(name, GroupType::OktaGroup)
            .expect("group");
        let user = format!("{name}-member@example.com");
        self.sim
            .create_user(&user, UserStatus::Active, None)
            .expect("user");
        self.sim.add_member(&id, &user).expect("member");
        name.to_string()
    }

    pub fn objects(&self) -> Api<OktaGroupBinding> {
        Api::all(self.client.clone())
    }

    pub async fn create(&self, name: &str, spec: OktaGroupBindingSpec) {
        self.objects()
            .create(&PostParams::default(), &OktaGroupBinding::new(name, spec))
            .await
            .expect("create");
    }

    /// The bindings an object (by name) has now.
    pub async fn bindings_of(&self, name: &str) -> usize {
        let params = ListParams::default().labels(MANAGED);
        let owned = |meta: &ObjectMeta| {
            meta.annotations
                .as_ref()
                .and_then(|a| a.get("oktarbac.io/owner"))
                .is_some_and(|owner| owner == name)
        };
        let crbs = Api::<ClusterRoleBinding>::all(self.client.clone())
            .list(&params)
            .await
            .expect("list")
            .items;
        let rbs = Api::<RoleBinding>::all(self.client.clone())
            .list(&params)
            .await
            .expect("list")
            .items;
        crbs.iter().filter(|b| owned(&b.metadata)).count()
            + rbs.iter().filter(|b| owned(&b.metadata)).count()
    }
}

//! Every malformed or hostile OktaGroupBinding we could think of, in one table: what each
//! one gets. Either admission refuses it with a message a person understands (and nothing
//! is stored), or the operator accepts it and says what is wrong in a condition. Meanwhile
//! a valid object keeps its binding untouched, new valid objects still converge, and the
//! operator stays healthy. The bad-input table of docs/usage/oktagroupbinding.md is this table.

mod common;

use common::{apply_binding, condition, harness, owned_bindings, view_spec, wait_condition};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use okta_rbac_api::OktaGroupBinding;
use okta_rbac_operator::reconcile::desired::{Scope, binding_name};
use okta_rbac_testenv::unique_name;
use okta_sim::GroupType;
use serde_json::{Value, json};

/// What a bad input gets.
enum Gets {
    /// The apiserver answers 400 or 422 with a message containing this text; nothing is
    /// stored.
    Refused(&'static str),
    /// Admitted; the operator sets this condition (type, status, reason).
    Reported(&'static str, &'static str, &'static str),
}
use Gets::{Refused, Reported};

struct Case {
    what: &'static str,
    name: String,
    spec: Value,
    gets: Gets,
}

fn case(what: &'static str, spec: Value, gets: Gets) -> Case {
    Case {
        what,
        name: unique_name("bad"),
        spec,
        gets,
    }
}

fn view() -> Value {
    json!([{"clusterRole": "view"}])
}

fn in_default(entry: Value) -> Value {
    json!({"group": "k8s-any", "roleBindings": [entry]})
}

/// A grant with these times (`None`: the field left out).
fn timed(start: Option<&str>, end: Option<&str>) -> Value {
    let mut spec = json!({"group": "k8s-a", "clusterRoleBindings": view()});
    if let Some(start) = start {
        spec["startTime"] = start.into();
    }
    if let Some(end) = end {
        spec["endTime"] = end.into();
    }
    spec
}

fn with_group(mut spec: Value, group: &str) -> Value {
    spec["group"] = group.into();
    spec
}

fn selecting(expression: Value) -> Value {
    in_default(
        json!({"namespaceSelector": {"matchExpressions": [expression]}, "clusterRole": "view"}),
    )
}

fn view_ref() -> RoleRef {
    RoleRef {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "ClusterRole".into(),
        name: "view".into(),
    }
}

fn group_subject(name: &str) -> Vec<Subject> {
    vec![Subject {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "Group".into(),
        name: name.into(),
        namespace: None,
    }]
}

/// As `kubectl apply` sends a new object: a create with strict field validation.
async fn create_strictly(
    client: &Client,
    name: &str,
    spec: &Value,
) -> Result<OktaGroupBinding, kube::Error> {
    let object = json!({
        "apiVersion": "oktarbac.io/v1alpha1",
        "kind": "OktaGroupBinding",
        "metadata": {"name": name},
        "spec": spec,
    });
    let request =
        http::Request::post("/apis/oktarbac.io/v1alpha1/oktagroupbindings?fieldValidation=Strict")
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&object).expect("JSON"))
            .expect("request");
    client.request(request).await
}

fn okta_group(name: &str, group_type: GroupType) -> String {
    harness()
        .sim
        .create_group(name, group_type)
        .expect("create group");
    name.to_string()
}

#[tokio::test]
async fn every_bad_input_is_refused_or_reported_and_nothing_else_is_disturbed() {
    let h = harness();
    let client = h.plane.client().await.expect("client");

    // A valid object that must not notice anything of what follows.
    let bystander_group = okta_group(&unique_name("k8s-bystander"), GroupType::OktaGroup);
    let bystander = unique_name("bystander");
    apply_binding(&client, &bystander, view_spec(&bystander_group)).await;
    let ready = wait_condition(&client, &bystander, "Ready", "True", None).await;
    let (bystander_crbs, _) = owned_bindings(&client, &ready).await;
    assert_eq!(bystander_crbs.len(), 1);

    let ambiguous = unique_name("k8s-twice");
    okta_group(&ambiguous, GroupType::OktaGroup);
    okta_group(&ambiguous, GroupType::AppGroup);
    let built_in = okta_group(&unique_name("k8s-everyone"), GroupType::BuiltIn);
    let outside = okta_group(&unique_name("platform"), GroupType::OktaGroup);
    let non_ascii = okta_group(&unique_name("k8s-straße-ü-日本"), GroupType::OktaGroup);
    let shared = okta_group(&unique_name("k8s-shared"), GroupType::OktaGroup);
    let fine = okta_group(&unique_name("k8s-fine"), GroupType::OktaGroup);
    let long_name = format!("{}-{}", unique_name("long"), "x".repeat(253))[..253].to_string();

    let mut cases = vec![
        // Shape: refused at admission.
        case(
            "no bindings at all",
            json!({"group": "k8s-a"}),
            Refused("declare at least one entry in clusterRoleBindings or roleBindings"),
        ),
        case(
            "empty binding lists",
            json!({"group": "k8s-a", "clusterRoleBindings": [], "roleBindings": []}),
            Refused("declare at least one entry"),
        ),
        case(
            "no group",
            json!({"clusterRoleBindings": view()}),
            Refused("spec.group: Required value"),
        ),
        case(
            "empty group",
            json!({"group": "", "clusterRoleBindings": view()}),
            Refused("spec.group"),
        ),
        case(
            "group as a number",
            json!({"group": 42, "clusterRoleBindings": view()}),
            Refused(
                "spec.group: Invalid value: \"integer\": spec.group in body must be of type string",
            ),
        ),
        case(
            "group longer than Okta allows (256 characters)",
            json!({"group": format!("k8s-{}", "a".repeat(252)), "clusterRoleBindings": view()}),
            Refused("spec.group: Too long: may not be more than 255"),
        ),
        case(
            "group with surrounding white space",
            json!({"group": " k8s-a", "clusterRoleBindings": view()}),
            Refused("spec.group in body should match"),
        ),
        case(
            "group with a control character",
            json!({"group": "k8s-\u{7}bell", "clusterRoleBindings": view()}),
            Refused("spec.group in body should match"),
        ),
        case(
            "misspelled field (clusterRoleBinding)",
            json!({"group": "k8s-a", "clusterRoleBinding": view()}),
            Refused("unknown field \"spec.clusterRoleBinding\""),
        ),
        case(
            "a Role in a ClusterRoleBinding",
            json!({"group": "k8s-a", "clusterRoleBindings": [{"role": "restricted-user"}]}),
            Refused("unknown field \"spec.clusterRoleBindings[0].role\""),
        ),
        case(
            "empty clusterRole",
            json!({"group": "k8s-a", "clusterRoleBindings": [{"clusterRole": ""}]}),
            Refused("should be at least 1 chars long"),
        ),
        case(
            "role name with a slash",
            json!({"group": "k8s-a", "clusterRoleBindings": [{"clusterRole": "a/b"}]}),
            Refused("clusterRole in body should match"),
        ),
        case(
            "clusterRole '..'",
            json!({"group": "k8s-a", "clusterRoleBindings": [{"clusterRole": ".."}]}),
            Refused("'.' and '..' are not role names"),
        ),
        case(
            "role '.' in a namespace",
            in_default(json!({"role": "."})),
            Refused("'.' and '..' are not role names"),
        ),
        case(
            "clusterRole '..' in a namespace",
            in_default(json!({"clusterRole": ".."})),
            Refused("'.' and '..' are not role names"),
        ),
        case(
            "subject prefix system:",
            json!({"group": "k8s-a", "subject": {"prefix": "system:"}, "clusterRoleBindings": view()}),
            Refused("a prefix may not start with system:"),
        ),
        case(
            "subject prefix system:masters-",
            json!({"group": "k8s-a", "subject": {"kind": "Users", "prefix": "system:masters-"}, "clusterRoleBindings": view()}),
            Refused("Kubernetes reserves system: for its own users and groups"),
        ),
        case(
            "65 ClusterRoleBindings",
            json!({"group": "k8s-a", "clusterRoleBindings": (0..65).map(|i| json!({"clusterRole": format!("r{i}")})).collect::<Vec<_>>()}),
            Refused("must have at most 64 items"),
        ),
        case(
            "a thousand RoleBindings in one object",
            json!({"group": "k8s-a", "roleBindings": vec![json!({"namespace": "default", "clusterRole": "view"}); 1000]}),
            Refused("must have at most 256 items"),
        ),
        case(
            "both role and clusterRole",
            in_default(json!({"namespace": "default", "role": "r", "clusterRole": "view"})),
            Refused("set exactly one of role and clusterRole"),
        ),
        case(
            "neither role nor clusterRole",
            in_default(json!({"namespace": "default"})),
            Refused("set exactly one of role and clusterRole"),
        ),
        case(
            "both namespace and namespaceSelector",
            in_default(
                json!({"namespace": "default", "namespaceSelector": {}, "clusterRole": "view"}),
            ),
            Refused("set exactly one of namespace and namespaceSelector"),
        ),
        case(
            "neither namespace nor namespaceSelector",
            in_default(json!({"clusterRole": "view"})),
            Refused("set exactly one of namespace and namespaceSelector"),
        ),
        case(
            "a Role with a namespaceSelector",
            in_default(json!({"namespaceSelector": {"matchLabels": {"a": "b"}}, "role": "r"})),
            Refused("use namespace, not namespaceSelector, with role"),
        ),
        case(
            "namespace that is not a DNS label",
            in_default(json!({"namespace": "Not_A_Namespace", "clusterRole": "view"})),
            Refused("namespace in body should match"),
        ),
        case(
            "namespace longer than 63 characters",
            in_default(json!({"namespace": "n".repeat(64), "clusterRole": "view"})),
            Refused("Too long: may not be more than 63"),
        ),
        case(
            "selector with an unknown operator",
            selecting(json!({"key": "team", "operator": "Like", "values": ["a"]})),
            Refused("Unsupported value: \"Like\""),
        ),
        case(
            "selector In without values",
            selecting(json!({"key": "team", "operator": "In"})),
            Refused("In and NotIn need values; Exists and DoesNotExist take none"),
        ),
        case(
            "selector Exists with values",
            selecting(json!({"key": "team", "operator": "Exists", "values": ["a"]})),
            Refused("In and NotIn need values; Exists and DoesNotExist take none"),
        ),
        case(
            "unknown subject kind",
            json!({"group": "k8s-a", "subject": {"kind": "Robots"}, "clusterRoleBindings": view()}),
            Refused("Unsupported value: \"Robots\""),
        ),
        case(
            "unknown userName attribute",
            json!({"group": "k8s-a", "subject": {"kind": "Users", "userName": "phone"}, "clusterRoleBindings": view()}),
            Refused("Unsupported value: \"phone\""),
        ),
        case(
            "subject prefix with a control character",
            json!({"group": "k8s-a", "subject": {"prefix": "oidc:\n"}, "clusterRoleBindings": view()}),
            Refused("prefix in body should match"),
        ),
        case(
            "unknown onGroupMissing",
            json!({"group": "k8s-a", "onGroupMissing": "Delete", "clusterRoleBindings": view()}),
            Refused("Unsupported value: \"Delete\""),
        ),
        case(
            "paused as a string",
            json!({"group": "k8s-a", "paused": "yes", "clusterRoleBindings": view()}),
            Refused("spec.paused in body must be of type boolean"),
        ),
        // Times: RFC 3339 in the range every reader holds, each fault with its own message.
        case(
            "an end meant never to come, past what the operator can hold",
            timed(None, Some("9999-12-31T23:59:59Z")),
            Refused(
                "spec.endTime: Invalid value: \"9999-12-31T23:59:59Z\": must be from 1970-01-01T00:00:00Z to 9999-12-30T00:00:00Z (a grant that never ends has no endTime)",
            ),
        ),
        case(
            "a start in year 0",
            timed(Some("0000-01-01T00:00:00Z"), None),
            Refused(
                "spec.startTime: Invalid value: \"0000-01-01T00:00:00Z\": must be from 1970-01-01T00:00:00Z",
            ),
        ),
        case(
            "a start before 1970",
            timed(Some("1969-12-31T23:59:59Z"), None),
            Refused("must be from 1970-01-01T00:00:00Z"),
        ),
        case(
            "an offset that carries the last instant past the range",
            timed(None, Some("9999-12-30T00:00:00-00:01")),
            Refused("must be from 1970-01-01T00:00:00Z"),
        ),
        case(
            "a date without a time",
            timed(None, Some("2026-12-01")),
            Refused(
                "spec.endTime: Invalid value: \"2026-12-01\": must be an RFC 3339 time such as 2026-12-01T09:00:00Z",
            ),
        ),
        case(
            "words",
            timed(None, Some("tomorrow")),
            Refused("must be an RFC 3339 time"),
        ),
        case(
            "a leap second",
            timed(None, Some("2026-12-31T23:59:60Z")),
            Refused("must be an RFC 3339 time"),
        ),
        case(
            "ten digits of a second",
            timed(None, Some("2026-12-31T23:59:59.1234567891Z")),
            Refused("must be an RFC 3339 time"),
        ),
        case(
            "February 30",
            timed(None, Some("2027-02-30T00:00:00Z")),
            Refused(
                "spec.endTime: Invalid value: \"2027-02-30T00:00:00Z\": names a day that does not exist",
            ),
        ),
        case(
            "February 29 of a year that has none",
            timed(None, Some("2100-02-29T00:00:00Z")),
            Refused("names a day that does not exist"),
        ),
        case(
            "an end before the start, in lowercase",
            timed(Some("2030-01-02t00:00:00z"), Some("2030-01-01t00:00:00z")),
            Refused("endTime must be after startTime"),
        ),
        case(
            "lowercase t and z, valid RFC 3339",
            with_group(timed(None, Some("9000-01-01t00:00:00z")), &fine),
            Reported("Active", "True", "Active"),
        ),
        case(
            "the last instant of the range, through an offset",
            with_group(timed(None, Some("9999-12-30T05:30:00+05:30")), &fine),
            Reported("Active", "True", "Active"),
        ),
        case(
            "a start at the first instant and nanoseconds",
            with_group(
                timed(
                    Some("1970-01-01T00:00:00Z"),
                    Some("9999-12-29T23:59:59.999999999Z"),
                ),
                &fine,
            ),
            Reported("Active", "True", "Active"),
        ),
        // What only Okta or the cluster can tell: admitted, reported in status.
        case(
            "group outside the allowed prefix",
            json!({"group": outside, "clusterRoleBindings": view()}),
            Reported("GroupVerified", "False", "OutsideAllowedPrefix"),
        ),
        case(
            "Okta's BUILT_IN Everyone",
            json!({"group": "Everyone", "clusterRoleBindings": view()}),
            Reported("GroupVerified", "False", "OutsideAllowedPrefix"),
        ),
        case(
            "a BUILT_IN group inside the prefix",
            json!({"group": built_in, "clusterRoleBindings": view()}),
            Reported("GroupVerified", "False", "BuiltInGroup"),
        ),
        case(
            "a name two Okta groups share",
            json!({"group": ambiguous, "clusterRoleBindings": view()}),
            Reported("GroupVerified", "False", "AmbiguousName"),
        ),
        case(
            "a group Okta does not have",
            json!({"group": unique_name("k8s-nobody"), "clusterRoleBindings": view()}),
            Reported("GroupVerified", "False", "GroupMissing"),
        ),
        case(
            "a namespace that does not exist",
            json!({"group": fine, "roleBindings": [{"namespace": unique_name("nowhere"), "clusterRole": "view"}]}),
            Reported("BindingsApplied", "False", "NamespaceMissing"),
        ),
        case(
            "a ClusterRole that does not exist",
            json!({"group": fine, "clusterRoleBindings": [{"clusterRole": unique_name("no-such-role")}]}),
            Reported("Ready", "False", "RoleMissing"),
        ),
        case(
            "a Role that does not exist in its namespace",
            json!({"group": fine, "roleBindings": [{"namespace": "default", "role": unique_name("no-such-role")}]}),
            Reported("Ready", "False", "RoleMissing"),
        ),
        case(
            "a non-ASCII group name Okta has",
            json!({"group": non_ascii, "clusterRoleBindings": view()}),
            Reported("Ready", "True", "Ready"),
        ),
        case(
            "the same grant declared twice",
            json!({"group": fine, "clusterRoleBindings": [{"clusterRole": "view"}, {"clusterRole": "view"}]}),
            Reported("Ready", "True", "Ready"),
        ),
    ];
    // Names: Kubernetes' own rules for metadata.name, then names that stretch ours.
    let named = |what, name: String, gets| {
        let mut c = case(
            what,
            json!({"group": fine, "clusterRoleBindings": view()}),
            gets,
        );
        c.name = name;
        c
    };
    let too_long_name = "n".repeat(254);
    cases.push(named(
        "object name with capitals and an underscore",
        "Bad_Name".into(),
        Refused("metadata.name: Invalid value"),
    ));
    cases.push(named(
        "non-ASCII object name",
        "grüppe".into(),
        Refused("metadata.name: Invalid value"),
    ));
    cases.push(named(
        "object name of 254 characters",
        too_long_name,
        Refused("must be no more than 253 characters"),
    ));
    cases.push(named(
        "object name of 253 characters (binding names would be too long)",
        long_name.clone(),
        Reported("Ready", "True", "Ready"),
    ));
    let clash = named(
        "a binding name the operator does not own",
        unique_name("clash"),
        Reported("BindingsApplied", "False", "Conflict"),
    );
    let clash_name = clash.name.clone();
    cases.push(clash);
    let (first_sharer, second_sharer) = (unique_name("sharer"), unique_name("sharer"));
    for sharer in [&first_sharer, &second_sharer] {
        let mut c = case(
            "two objects granting the same group the same role",
            json!({"group": shared, "clusterRoleBindings": view()}),
            Reported("Ready", "True", "Ready"),
        );
        c.name = sharer.clone();
        cases.push(c);
    }
    assert!(cases.len() >= 40, "{} cases", cases.len());

    // Someone else's binding already has the name the clash object would use.
    let foreign = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(binding_name(&clash_name, &Scope::Cluster, &view_ref())),
            ..Default::default()
        },
        role_ref: view_ref(),
        subjects: Some(group_subject("someone-else")),
    };
    let crbs = Api::<ClusterRoleBinding>::all(client.clone());
    crbs.create(&PostParams::default(), &foreign)
        .await
        .expect("foreign binding");

    let api = Api::<OktaGroupBinding>::all(client.clone());
    for c in &cases {
        let result = create_strictly(&client, &c.name, &c.spec).await;
        match (&c.gets, result) {
            (Refused(expected), Err(kube::Error::Api(status))) => {
                // 400 for what cannot be decoded (unknown fields), 422 for invalid values.
                assert!(
                    [400, 422].contains(&status.code),
                    "{}: {} {}",
                    c.what,
                    status.code,
                    status.message
                );
                assert!(
                    status.message.contains(expected),
                    "{}: {:?} should mention {expected:?}",
                    c.what,
                    status.message
                );
                println!(
                    "| {} | refused ({}): {} |",
                    c.what, status.code, status.message
                );
            }
            (Refused(_), other) => panic!("{}: should be refused, got {other:?}", c.what),
            (Reported(..), Ok(_)) => {}
            (Reported(..), Err(error)) => panic!("{}: should be admitted: {error}", c.what),
        }
    }
    for c in &cases {
        match c.gets {
            Refused(_) => assert!(
                api.get_opt(&c.name).await.expect("get").is_none(),
                "{}: nothing stored",
                c.what
            ),
            Reported(type_, status, reason) => {
                let ogb = wait_condition(&client, &c.name, type_, status, Some(reason)).await;
                let shown = condition(&ogb, type_).expect("condition");
                assert!(!shown.message.is_empty(), "{}: a message", c.what);
                println!(
                    "| {} | {type_}={status} {reason}: {} |",
                    c.what, shown.message
                );
                let (crbs, _) = owned_bindings(&client, &ogb).await;
                if type_ == "GroupVerified" {
                    assert!(crbs.is_empty(), "{}: nothing bound", c.what);
                }
            }
        }
    }

    // The per-case promises beyond the condition.
    let untouched = crbs.get(&foreign.name_any()).await.expect("still there");
    assert_eq!(untouched.subjects, foreign.subjects, "not taken over");
    assert!(untouched.metadata.owner_references.is_none());

    let long = api.get(&long_name).await.expect("long-named object");
    let (long_crbs, _) = owned_bindings(&client, &long).await;
    assert_eq!(long_crbs.len(), 1);
    assert!(long_crbs[0].name_any().len() <= 90, "bounded binding name");

    let mut sharer_bindings = Vec::new();
    for sharer in [&first_sharer, &second_sharer] {
        let ogb = api.get(sharer).await.expect("sharer");
        let (owned, _) = owned_bindings(&client, &ogb).await;
        assert_eq!(owned.len(), 1, "each object has its own binding");
        assert_eq!(owned[0].subjects, Some(group_subject(&shared)));
        sharer_bindings.push(owned[0].name_any());
    }
    assert_ne!(
        sharer_bindings[0], sharer_bindings[1],
        "never the same binding"
    );

    let twice = cases
        .iter()
        .find(|c| c.what == "the same grant declared twice")
        .expect("case");
    let ogb = api.get(&twice.name).await.expect("twice");
    let (owned, _) = owned_bindings(&client, &ogb).await;
    assert_eq!(owned.len(), 1, "one binding for a grant declared twice");
    assert_eq!(ogb.status.expect("status").binding_count, 1);

    let unicode = cases
        .iter()
        .find(|c| c.what == "a non-ASCII group name Okta has")
        .expect("case");
    let ogb = api.get(&unicode.name).await.expect("non-ASCII");
    let (owned, _) = owned_bindings(&client, &ogb).await;
    assert_eq!(owned[0].subjects, Some(group_subject(&non_ascii)));

    // The bystander kept its binding, unwritten; the operator is healthy and still
    // converges new objects promptly.
    let (after, _) = owned_bindings(&client, &ready).await;
    assert_eq!(
        after[0].metadata.resource_version, bystander_crbs[0].metadata.resource_version,
        "the bystander's binding was not rewritten"
    );
    let health = okta_rbac_testenv::http_get(&format!("{}/healthz", h.metrics)).await;
    assert_eq!(health.map(|(status, _)| status), Some(200));
    let late = unique_name("late");
    apply_binding(&client, &late, view_spec(&fine)).await;
    wait_condition(&client, &late, "Ready", "True", None).await;
}

use super::*;
use k8s_openapi::jiff::Timestamp;

fn binding(namespace: &str, name: &str, owner: Option<&str>) -> RoleBinding {
    RoleBinding {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: owner.map(|uid| [(OWNER_UID_LABEL.to_string(), uid.to_string())].into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "oktarbac.io/v1alpha1".into(),
                kind: "OktaGroupBinding".into(),
                name: "team".into(),
                uid: owner.unwrap_or("none").into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            resource_version: Some("17".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: "view".into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Group".into(),
            name: "oidc:k8s-team".into(),
            namespace: None,
        }]),
    }
}

fn names(cache: &BindingCache<RoleBinding>, owner: &str) -> Vec<String> {
    let mut names: Vec<String> = cache
        .owned_by(owner)
        .into_iter()
        .map(|b| format!("{}/{}", b.namespace().unwrap_or_default(), b.name_any()))
        .collect();
    names.sort();
    names
}

#[test]
fn follows_applies_relabels_and_deletes() {
    let cache = BindingCache::default();
    cache.observe(&Event::Apply(binding("a", "one", Some("u1"))));
    cache.observe(&Event::Apply(binding("b", "one", Some("u1"))));
    cache.observe(&Event::Apply(binding("a", "two", Some("u2"))));
    assert_eq!(names(&cache, "u1"), ["a/one", "b/one"]);

    // Someone moved the label to another owner, then removed it.
    cache.observe(&Event::Apply(binding("b", "one", Some("u2"))));
    assert_eq!(names(&cache, "u1"), ["a/one"]);
    assert_eq!(names(&cache, "u2"), ["a/two", "b/one"]);
    cache.observe(&Event::Apply(binding("b", "one", None)));
    assert_eq!(names(&cache, "u2"), ["a/two"]);
    assert_eq!(cache.sizes().0, 3, "still cached, filed under no owner");

    cache.observe(&Event::Delete(binding("a", "one", Some("u1"))));
    assert!(names(&cache, "u1").is_empty());
    assert!(!cache.lock().contents.by_owner.contains_key("u1"));
}

#[test]
fn a_binding_comes_back_as_it_was_cached() {
    let cache = BindingCache::default();
    let mut original = binding("a", "one", Some("u1"));
    original.metadata.annotations = Some([(OWNER_ANNOTATION.to_string(), "team".into())].into());
    original.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    original.metadata.deletion_timestamp = Some(Time(Timestamp::from_second(1).expect("time")));
    cache.observe(&Event::Apply(original.clone()));
    let back = cache.owned_by("u1");
    assert_eq!(back, vec![original]);
}

#[test]
fn the_bindings_of_one_object_share_their_parts() {
    let cache = BindingCache::default();
    for n in 0..3000 {
        cache.observe(&Event::Apply(binding(
            &format!("ns-{n}"),
            "team-view",
            Some("u1"),
        )));
    }
    cache.observe(&Event::Apply(binding("ns-0", "other", Some("u2"))));
    assert_eq!(
        cache.sizes(),
        (3001, 2),
        "3,001 bindings, 2 distinct sets of parts"
    );

    // A drifted binding gets parts of its own, and gives them back when repaired.
    let mut drifted = binding("ns-1", "team-view", Some("u1"));
    drifted.subjects = Some(vec![]);
    cache.observe(&Event::Apply(drifted));
    assert_eq!(cache.sizes(), (3001, 3));
    cache.observe(&Event::Apply(binding("ns-1", "team-view", Some("u1"))));
    assert_eq!(cache.sizes(), (3001, 2));

    for n in 0..3000 {
        cache.observe(&Event::Delete(binding(
            &format!("ns-{n}"),
            "team-view",
            Some("u1"),
        )));
    }
    assert_eq!(cache.sizes(), (1, 1), "the deleted object's parts are gone");
    let strings = cache.lock().strings.len();
    assert!(
        strings <= SWEEP_AFTER,
        "and so are most of the namespaces' names: {strings} of 3,002 left"
    );
}

#[test]
fn a_created_binding_is_expected_until_its_watch_event_arrives() {
    let cache = BindingCache::default();
    let created = binding("a", "new", Some("u1"));
    let reference = reference_of(&created);
    assert!(cache.expected_for("u1").is_empty());
    cache.expect(&reference, "u1");
    assert_eq!(cache.expected_for("u1"), vec![reference.clone()]);
    assert!(
        cache.expected_for("u2").is_empty(),
        "expected for its owner only"
    );
    assert!(
        cache.observe(&Event::Apply(created.clone())),
        "its arrival is the one expected"
    );
    assert!(cache.expected_for("u1").is_empty());
    assert!(
        !cache.observe(&Event::Apply(created)),
        "a later change is news"
    );
    assert_eq!(names(&cache, "u1"), ["a/new"]);
}

#[test]
fn an_orphan_is_filed_under_its_former_owners_name() {
    let cache = BindingCache::default();
    let mut owned = binding("a", "kept", Some("u1"));
    owned.metadata.annotations = Some([(OWNER_ANNOTATION.to_string(), "team".to_string())].into());
    cache.observe(&Event::Apply(owned.clone()));
    assert_eq!(names(&cache, "u1"), ["a/kept"]);
    // Its object was deleted with --cascade=orphan: the garbage collector drops the
    // owner reference.
    owned.metadata.owner_references = None;
    cache.observe(&Event::Apply(owned));
    assert!(names(&cache, "u1").is_empty());
    assert_eq!(names(&cache, &orphan_key("team")), ["a/kept"]);
}

#[test]
fn a_relist_replaces_the_cache_only_when_complete() {
    let cache = BindingCache::default();
    cache.observe(&Event::Apply(binding("a", "gone", Some("u1"))));
    cache.observe(&Event::Init);
    cache.observe(&Event::InitApply(binding("a", "kept", Some("u1"))));
    // Until the list is complete the old view is served.
    assert_eq!(names(&cache, "u1"), ["a/gone"]);
    cache.observe(&Event::InitDone);
    assert_eq!(names(&cache, "u1"), ["a/kept"]);
    assert_eq!(cache.all().len(), 1);
    assert_eq!(cache.sizes(), (1, 1));
}

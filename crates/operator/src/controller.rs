//! The controller: watches OktaGroupBindings and everything that changes their outcome
//! (their bindings, namespaces, roles), and runs a reconcile for each object they touch.

use crate::cache::{
    BindingCache, Keep, NamespaceCache, Stores, WatchStates, all_synced, bindings, cached,
};
use crate::labels::{MANAGED_BY_LABEL, MANAGER};
use crate::reconcile::{self, context::Context};
use crate::tasks::{Supervisor, TaskEnded};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Config};
use kube::runtime::{Controller, WatchStreamExt, predicates};
use kube::{Client, ResourceExt};
use okta_rbac_api::{Decoded, OktaGroupBinding};
use std::sync::Arc;

/// An OktaGroupBinding as stored: read, or reported as unreadable (see [`Decoded`]).
pub type Stored = Decoded<OktaGroupBinding>;

/// The readable objects that `wanted` picks. One that cannot be read is left out: the
/// operator does not act on it until it can.
fn matching(
    objects: &Store<Stored>,
    wanted: impl Fn(&OktaGroupBinding) -> bool,
) -> Vec<ObjectRef<Stored>> {
    objects
        .state()
        .iter()
        .filter(|stored| stored.readable().is_some_and(&wanted))
        .map(|stored| ObjectRef::from_obj(stored.as_ref()))
        .collect()
}

/// How often the `cached_objects` gauges are brought up to date.
const CACHE_SIZES_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The objects whose outcome depends on a namespace: explicit ones naming it, and every
/// one with a selector (its labels may have started or stopped matching).
fn objects_for_namespace(
    objects: &Store<Stored>,
    namespace: &PartialObjectMeta<Namespace>,
) -> Vec<ObjectRef<Stored>> {
    let name = namespace.name_any();
    matching(objects, |ogb| {
        ogb.spec.role_bindings.iter().any(|rb| {
            rb.namespace_selector.is_some() || rb.namespace.as_deref() == Some(name.as_str())
        })
    })
}

/// The objects that reference a role of this name (for the RoleMissing condition).
fn objects_for_role(objects: &Store<Stored>, kind: &str, name: &str) -> Vec<ObjectRef<Stored>> {
    matching(objects, |ogb| match kind {
        "ClusterRole" => {
            ogb.spec
                .cluster_role_bindings
                .iter()
                .any(|c| c.cluster_role == name)
                || ogb
                    .spec
                    .role_bindings
                    .iter()
                    .any(|r| r.cluster_role.as_deref() == Some(name))
        }
        _ => ogb
            .spec
            .role_bindings
            .iter()
            .any(|r| r.role.as_deref() == Some(name)),
    })
}

/// The objects bound to any of these Okta groups (names as the objects spell them).
fn objects_for_groups(objects: &Store<Stored>, groups: &[String]) -> Vec<ObjectRef<Stored>> {
    matching(objects, |ogb| groups.contains(&ogb.spec.group))
}

/// Everything the controller needs besides the Kubernetes client.
pub struct Parts {
    pub okta: Arc<crate::okta::GroupDirectory>,
    pub claims: Option<Arc<crate::okta::claims::ClaimsCache>>,
    pub policy: crate::policy::Policy,
    pub resync: std::time::Duration,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub concurrency: u16,
    /// Told of every finished reconcile, for `/healthz`.
    pub progress: Arc<crate::progress::Progress>,
    /// Reads Okta's System Log while this replica leads; `None` when turned off.
    pub system_log: Option<crate::okta::system_log::Follower>,
    /// The stream of Okta's changes the System Log and the event hook feed.
    pub stream: Option<Arc<crate::okta::stream::ChangeStream>>,
    /// The event hook's deliveries, taken while this replica leads.
    pub hook_inbox: Option<Arc<crate::hooks::Inbox>>,
    /// Where each watch stands, for `/readyz` and the metrics.
    pub watches: Arc<WatchStates>,
    /// The revocation authorizer's memory, when it serves.
    pub roster: Option<Arc<crate::authorizer::roster::Roster>>,
    /// The Okta events read lately, for the audit log.
    pub recent: Arc<crate::okta::recent::RecentEvents>,
    /// The Services pointed at this replica while it leads (the revocation authorizer's,
    /// the event hook receiver's).
    pub leader_endpoints: Vec<crate::leader_endpoint::LeaderEndpoint>,
}

/// How long a stopping controller waits for the events still queued to go out.
const EVENT_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);
/// System Log reports (groups that changed) waiting for the controller, at most.
const LOG_REPORTS: usize = 64;

/// What changed of one kind, for the controller's triggers.
type Changes<K> = futures::stream::BoxStream<'static, Result<K, watcher::Error>>;

/// The caches of the cluster and the streams of what changed in them.
struct Watches {
    stores: Stores,
    crbs: Changes<ClusterRoleBinding>,
    rbs: Changes<RoleBinding>,
    namespaces: Changes<PartialObjectMeta<Namespace>>,
    cluster_roles: Changes<PartialObjectMeta<ClusterRole>>,
    roles: Changes<PartialObjectMeta<Role>>,
    synced: Vec<crate::cache::Synced>,
}

/// Watches the operator's bindings (by label), and the names and labels of namespaces,
/// ClusterRoles and Roles.
fn watch_cluster(client: Client, states: &Arc<WatchStates>) -> Watches {
    let managed = Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}"));
    let crb_cache = Arc::new(BindingCache::default());
    let (crbs_report, crbs_synced) = states.register("ClusterRoleBindings");
    let crbs = bindings(
        Api::<ClusterRoleBinding>::all(client.clone()),
        managed.clone(),
        crb_cache.clone(),
        crbs_report,
    );
    let rb_cache = Arc::new(BindingCache::default());
    let (rbs_report, rbs_synced) = states.register("RoleBindings");
    let rbs = bindings(
        Api::<RoleBinding>::all(client.clone()),
        managed,
        rb_cache.clone(),
        rbs_report,
    );
    // Api<PartialObjectMeta<_>> asks the apiserver for metadata only: no spec, no rules.
    let ns_cache = Arc::new(NamespaceCache::default());
    let (namespaces_report, namespaces_synced) = states.register("Namespaces");
    let namespaces = crate::cache::namespaces(
        Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
        ns_cache.clone(),
        namespaces_report,
    );
    let (cluster_roles_report, cluster_roles_synced) = states.register("ClusterRoles");
    let (cr_store, cluster_roles) = cached(
        Api::<PartialObjectMeta<ClusterRole>>::all(client.clone()),
        Config::default(),
        Keep::Identity,
        |_| {},
        cluster_roles_report,
    );
    let (roles_report, roles_synced) = states.register("Roles");
    let (role_store, roles) = cached(
        Api::<PartialObjectMeta<Role>>::all(client),
        Config::default(),
        Keep::Identity,
        |_| {},
        roles_report,
    );
    Watches {
        stores: Stores {
            cluster_role_bindings: crb_cache,
            role_bindings: rb_cache,
            namespaces: ns_cache,
            cluster_roles: cr_store,
            roles: role_store,
        },
        crbs: crbs.boxed(),
        rbs: rbs.boxed(),
        namespaces: namespaces.boxed(),
        cluster_roles: cluster_roles.boxed(),
        roles: roles.boxed(),
        synced: vec![
            crbs_synced,
            rbs_synced,
            namespaces_synced,
            cluster_roles_synced,
            roles_synced,
        ],
    }
}

/// Runs the controller until `shutdown` resolves, or a task it needs ends. `ready` is
/// called once every watch has its first full list. Events still queued are published
/// before it returns.
pub async fn run(
    client: Client,
    parts: Parts,
    ready: impl FnOnce() + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), TaskEnded> {
    let mut tasks = Supervisor::default();
    let watch_states = Arc::clone(&parts.watches);
    let Watches {
        stores,
        crbs,
        rbs,
        namespaces,
        cluster_roles,
        roles,
        synced: mut watches,
    } = watch_cluster(client.clone(), &parts.watches);
    let (events, event_worker, events_open) = crate::events::EventQueue::new(
        crate::events::Publisher::new(client.clone(), MANAGER, std::env::var("POD_NAME").ok()),
        crate::events::QUEUE,
        parts.metrics.events_dropped.clone(),
    );
    let event_worker = tokio::spawn(event_worker);
    let ctx = Arc::new(Context {
        events,
        client: client.clone(),
        okta: parts.okta,
        claims: parts.claims,
        policy: parts.policy,
        resync: parts.resync,
        stores,
        metrics: parts.metrics,
        failures: Default::default(),
        written_status: Default::default(),
        unreadable: Default::default(),
        roster: parts.roster,
        recent: parts.recent,
    });

    // The objects' own watch, so that every group is queued for verification as soon as
    // its object arrives (see GroupDirectory::prefetch).
    // Each object is decoded on its own: one that cannot be read is reported, never
    // failing the list or the watch (and with it every other object).
    let observer = Arc::clone(&ctx);
    let (objects_report, objects_synced) = parts.watches.register("OktaGroupBindings");
    let (objects, object_events) = cached(
        Api::<Stored>::all(client.clone()),
        Config::default(),
        Keep::Object,
        move |event| match event {
            watcher::Event::Apply(Decoded::Read(ogb))
            | watcher::Event::InitApply(Decoded::Read(ogb))
                if reconcile::schedule::asks_okta(ogb, k8s_openapi::jiff::Timestamp::now()) =>
            {
                observer.okta.prefetch(&ogb.spec.group);
            }
            watcher::Event::Delete(stored) => observer.forget(&stored.uid().unwrap_or_default()),
            _ => {}
        },
        objects_report,
    );
    watches.push(objects_synced);
    // Groups an Okta event (from the System Log or the event hook) says changed: their
    // objects are reconciled now, not at the next resync.
    let (changed, changes) = tokio::sync::mpsc::channel::<Vec<String>>(LOG_REPORTS);
    if let Some((inbox, stream)) = parts.hook_inbox.zip(parts.stream) {
        tasks.spawn(
            "the event hook deliveries",
            crate::hooks::deliver(inbox.open(), stream, changed.clone()),
        );
    }
    if let Some(follower) = parts.system_log {
        tasks.spawn("the System Log follower", follower.run(changed));
    }
    for endpoint in parts.leader_endpoints {
        tasks.spawn("a leader's Service endpoint", endpoint.keep(client.clone()));
    }
    let for_log = objects.clone();
    let log_triggers = futures::stream::unfold(changes, |mut changes| async move {
        changes.recv().await.map(|names| (names, changes))
    })
    .flat_map(move |names| futures::stream::iter(objects_for_groups(&for_log, &names)));

    let progress = parts.progress;
    progress.leading();
    tasks.spawn(
        "the cache upkeep",
        upkeep(
            Arc::clone(&ctx),
            objects.clone(),
            watches,
            ready,
            progress.clone(),
        ),
    );
    let objects_now = objects.clone();
    let counted = Arc::clone(&ctx);
    // A change of spec moves the generation; a status write (most often the operator's
    // own) does not, and changes nothing the reconcile decides from.
    let status_observer = Arc::clone(&ctx);
    let spec_changes = object_events
        .inspect_ok(move |stored| {
            if let Decoded::Read(ogb) = stored {
                status_observer.cached_version(ogb);
            }
        })
        .predicate_filter(predicates::generation, Default::default());
    let controller = Controller::for_stream(spec_changes, objects.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(parts.concurrency));
    let (for_ns, for_cr, for_role) = (objects.clone(), objects.clone(), objects);
    let running = controller
        .watches_stream(crbs, |binding| owner_of(&binding))
        .watches_stream(rbs, |binding| owner_of(&binding))
        .watches_stream(namespaces, move |ns| objects_for_namespace(&for_ns, &ns))
        .watches_stream(cluster_roles, move |role| {
            objects_for_role(&for_cr, "ClusterRole", &role.name_any())
        })
        .watches_stream(roles, move |role| {
            objects_for_role(&for_role, "Role", &role.name_any())
        })
        .reconcile_on(log_triggers)
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| {
            progress.reconciled();
            progress.objects(counted.readable_objects(objects_now.len()));
            async move {
                if let Err(error) = result {
                    tracing::debug!(%error, "reconcile did not run");
                }
            }
        });
    let outcome = tokio::select! {
        () = running => Ok(()),
        ended = tasks.ended() => Err(ended),
    };
    drop(tasks);
    watch_states.clear();
    // The queue takes no more; the worker publishes what is left.
    drop(events_open);
    if tokio::time::timeout(EVENT_FLUSH, event_worker)
        .await
        .is_err()
    {
        tracing::warn!("events still queued at shutdown were not all published");
    }
    outcome
}

/// Once every watch has its first full list, says so; then keeps the caches' gauges up
/// to date and drops the Okta answers no object needs any more.
async fn upkeep(
    ctx: Arc<Context>,
    objects: Store<Stored>,
    watches: Vec<crate::cache::Synced>,
    ready: impl FnOnce() + Send + 'static,
    progress: Arc<crate::progress::Progress>,
) {
    if all_synced(watches).await {
        progress.objects(ctx.readable_objects(objects.len()));
        ready();
    }
    let mut tick = tokio::time::interval(CACHE_SIZES_INTERVAL);
    loop {
        tick.tick().await;
        let groups: std::collections::HashSet<String> = objects
            .state()
            .iter()
            .filter_map(|stored| stored.readable())
            .map(|ogb| ogb.spec.group.clone())
            .collect();
        ctx.okta.retain(&groups);
        ctx.metrics.cached("OktaGroupBinding", objects.len());
        for (kind, count) in ctx.stores.sizes().into_iter().chain(ctx.okta.sizes()) {
            ctx.metrics.cached(kind, count);
        }
    }
}

/// The OktaGroupBinding that owns a binding. Not `owns_stream`: it assumes the owner lives
/// in the child's namespace, so a RoleBinding's owner reference would name a different
/// object key in every namespace, and one object would be reconciled several times at once.
fn owner_of<K: kube::Resource>(binding: &K) -> Option<ObjectRef<Stored>> {
    let owner = binding
        .owner_references()
        .iter()
        .find(|r| r.controller == Some(true))?;
    let kind_matches = owner.kind == "OktaGroupBinding"
        && owner.api_version == <OktaGroupBinding as kube::Resource>::api_version(&());
    kind_matches.then(|| ObjectRef::new(&owner.name))
}

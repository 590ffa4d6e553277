//! How long a token issued before a change in Okta keeps what the change took away, with
//! real ID tokens: for each setup (Group mode alone, Group mode with the revocation
//! authorizer, Users mode) and each change (member removed, user suspended, deactivated,
//! deleted, group deleted, group renamed out of the prefix, time-bound end), REVOCATION_ROUNDS
//! rounds (20 by default), each its own group, user, token and OktaGroupBinding granting
//! `view` in default. The changes of one kind are made a fraction of a second apart, so
//! that they fall at every phase of the System Log poll; each token is asked every 100 ms
//! until the apiserver refuses it. REVOCATION_ROUNDS=0 skips the case.

use crate::workload::env_number;
use okta_rbac_demo::{Demo, id_token};
use okta_sim::{GroupType, Lifecycle, UserStatus};
use std::path::Path;
use std::time::{Duration, Instant};

/// The System Log poll of every setup (the operator's default is 30 s).
pub const LOG_INTERVAL: &str = "2s";
/// The changes of one kind are this far apart.
pub const SPACING: Duration = Duration::from_millis(370);
/// A token that still gets in this long after its change has kept its access
/// (REVOCATION_GIVE_UP_SECONDS, 20 by default).
pub fn give_up() -> Duration {
    Duration::from_secs(env_number("REVOCATION_GIVE_UP_SECONDS", 20))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    GroupAlone,
    GroupWithAuthorizer,
    Users,
}

impl Setup {
    pub fn describe(self) -> &'static str {
        match self {
            Setup::GroupAlone => "Group mode alone",
            Setup::GroupWithAuthorizer => "Group mode with the authorizer",
            Setup::Users => "Users mode",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Removed,
    Suspended,
    Deactivated,
    Deleted,
    GroupDeleted,
    Renamed,
    TimeBoundEnd,
}

impl Change {
    pub fn describe(self) -> &'static str {
        match self {
            Change::Removed => "removed from the group",
            Change::Suspended => "suspended",
            Change::Deactivated => "deactivated",
            Change::Deleted => "deleted",
            Change::GroupDeleted => "group deleted",
            Change::Renamed => "group renamed out of the prefix",
            Change::TimeBoundEnd => "time-bound grant ends",
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Change::Removed => "rm",
            Change::Suspended => "su",
            Change::Deactivated => "de",
            Change::Deleted => "dl",
            Change::GroupDeleted => "gd",
            Change::Renamed => "rn",
            Change::TimeBoundEnd => "tb",
        }
    }
}

/// One row: how long each token kept its access after its change, in seconds (negative:
/// refused before it, as a time-bound end may be; `None`: still in after [`give_up`]).
pub struct Row {
    pub setup: Setup,
    pub change: Change,
    pub kept: Vec<Option<f64>>,
}

/// Group requests a minute the local Okta allows (REVOCATION_ORG_LIMIT, 1,000 by default:
/// a large org's order; 0: the local Okta's default 100, the smallest org's). Each row's
/// twenty new objects are read from Okta once; at the smallest org's limit that spends
/// the budget the revocations then wait for.
pub fn org_limit() -> u32 {
    env_number("REVOCATION_ORG_LIMIT", 1000)
}

fn rounds() -> usize {
    env_number("REVOCATION_ROUNDS", 20)
}

/// One round's world: its group, user, token.
pub struct Round {
    pub group_id: String,
    pub group: String,
    pub user: String,
    /// The OktaGroupBinding granting the group `view` in default.
    pub object: String,
    pub token: kube::Client,
}

/// The status of listing pods in default with `client`.
pub async fn lists_pods(client: &kube::Client) -> u16 {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams};
    match Api::<Pod>::namespaced(client.clone(), "default")
        .list(&ListParams::default().limit(1))
        .await
    {
        Ok(_) => 200,
        Err(kube::Error::Api(status)) => status.code,
        Err(_) => 0,
    }
}

/// The rounds of one change in one setup: each a group with one member, an object
/// granting `view` in default (ending at `ends[i]` when given), and the member's token,
/// once it lists pods.
pub async fn prepare(
    demo: &Demo,
    setup: Setup,
    change: Change,
    ends: &[Option<k8s_openapi::jiff::Timestamp>],
) -> Result<Vec<Round>, String> {
    use kube::api::{Api, PostParams};
    use okta_rbac_api::OktaGroupBinding;
    let admin = demo.plane.client().await.map_err(|e| e.to_string())?;
    let objects: Api<OktaGroupBinding> = Api::all(admin.clone());
    let mut rounds = Vec::new();
    for (i, end) in ends.iter().enumerate() {
        let tag = format!("{}-{}-{i}", change.tag(), setup_tag(setup));
        let group = format!("k8s-rev-{tag}");
        let user = format!("rev-{tag}@example.com");
        let password = format!("{tag}-password");
        let group_id = demo
            .sim
            .create_group(&group, GroupType::OktaGroup)
            .map_err(|e| e.to_string())?;
        demo.sim
            .create_user(&user, UserStatus::Active, Some(&password))
            .map_err(|e| e.to_string())?;
        demo.sim
            .add_member(&group_id, &user)
            .map_err(|e| e.to_string())?;
        let mut spec = serde_json::json!({
            "group": group,
            "roleBindings": [{"namespace": "default", "clusterRole": "view"}],
        });
        if setup == Setup::Users {
            spec["subject"] = serde_json::json!({"kind": "Users"});
        }
        if let Some(end) = end {
            spec["endTime"] = serde_json::json!(end.to_string());
        }
        let object: OktaGroupBinding = serde_json::from_value(serde_json::json!({
            "apiVersion": "oktarbac.io/v1alpha1",
            "kind": "OktaGroupBinding",
            "metadata": {"name": format!("rev-{tag}")},
            "spec": spec,
        }))
        .map_err(|e| e.to_string())?;
        objects
            .create(&PostParams::default(), &object)
            .await
            .map_err(|e| format!("creating rev-{tag}: {e}"))?;
        let token = id_token(&demo.sim, "default", &user, &password).await?;
        let token = demo
            .plane
            .client_with_token(&token)
            .await
            .map_err(|e| e.to_string())?;
        rounds.push(Round {
            group_id,
            group,
            user,
            object: format!("rev-{tag}"),
            token,
        });
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for round in &rounds {
        while lists_pods(&round.token).await != 200 {
            if Instant::now() > deadline {
                return Err(format!("{}'s token never listed pods", round.user));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(rounds)
}

pub fn setup_tag(setup: Setup) -> &'static str {
    match setup {
        Setup::GroupAlone => "g",
        Setup::GroupWithAuthorizer => "a",
        Setup::Users => "u",
    }
}

pub fn apply_change(sim: &okta_sim::OktaSim, change: Change, round: &Round) -> Result<(), String> {
    let (group_id, user) = (&round.group_id, &round.user);
    let done = match change {
        Change::Removed => sim.remove_member(group_id, user),
        Change::Suspended => sim.user_lifecycle(user, Lifecycle::Suspend).map(drop),
        Change::Deactivated => sim.user_lifecycle(user, Lifecycle::Deactivate).map(drop),
        // Okta deletes in two steps: the first DELETE deactivates, the second deletes.
        Change::Deleted => sim
            .user_lifecycle(user, Lifecycle::Delete)
            .and_then(|_| sim.user_lifecycle(user, Lifecycle::Delete))
            .map(drop),
        Change::GroupDeleted => sim.delete_group(group_id),
        Change::Renamed => sim.rename_group(group_id, round.group.trim_start_matches("k8s-")),
        Change::TimeBoundEnd => Ok(()),
    };
    done.map_err(|e| e.to_string())
}

/// Measures one change in one setup over the rounds.
async fn measure(demo: &Demo, setup: Setup, change: Change, rounds: usize) -> Result<Row, String> {
    let started = Instant::now();
    let ends: Vec<Option<k8s_openapi::jiff::Timestamp>> = (0..rounds)
        .map(|i| {
            (change == Change::TimeBoundEnd).then(|| {
                // Far enough ahead for every round to be ready first; whole seconds, as
                // the typed client writes a time (it drops the fraction).
                let end = k8s_openapi::jiff::Timestamp::now()
                    + k8s_openapi::jiff::SignedDuration::from_secs(30 + rounds as i64 / 2)
                    + k8s_openapi::jiff::SignedDuration::try_from(SPACING * i as u32)
                        .unwrap_or_default();
                k8s_openapi::jiff::Timestamp::from_second(end.as_second()).unwrap_or(end)
            })
        })
        .collect();
    let prepared = prepare(demo, setup, change, &ends).await?;
    let mut watchers = tokio::task::JoinSet::new();
    for (i, round) in prepared.into_iter().enumerate() {
        let changed_at = match ends[i] {
            Some(end) => {
                let wait = end.duration_since(k8s_openapi::jiff::Timestamp::now());
                Instant::now() + Duration::try_from(wait).unwrap_or_default()
            }
            None => {
                tokio::time::sleep(SPACING).await;
                apply_change(&demo.sim, change, &round)?;
                Instant::now()
            }
        };
        // A time-bound end is watched from before it: access must not end early either.
        let from = if ends[i].is_some() {
            changed_at
                .checked_sub(Duration::from_secs(3))
                .unwrap_or(changed_at)
        } else {
            changed_at
        };
        watchers.spawn(async move {
            tokio::time::sleep_until(from.into()).await;
            loop {
                if lists_pods(&round.token).await == 403 {
                    let now = Instant::now();
                    return Some(if now >= changed_at {
                        (now - changed_at).as_secs_f64()
                    } else {
                        -(changed_at - now).as_secs_f64()
                    });
                }
                if Instant::now() > changed_at + give_up() {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    let mut kept = Vec::new();
    while let Some(joined) = watchers.join_next().await {
        kept.push(joined.map_err(|e| e.to_string())?);
    }
    eprintln!(
        ">> revocation: {} / {}: {} rounds in {:.0}s",
        setup.describe(),
        change.describe(),
        kept.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(Row {
        setup,
        change,
        kept,
    })
}

/// Every setup and change; `None` when REVOCATION_ROUNDS=0.
pub async fn run(operator_bin: &Path) -> Option<Vec<Row>> {
    let rounds = rounds();
    if rounds == 0 {
        return None;
    }
    let flags = ["--okta-system-log-interval", LOG_INTERVAL];
    let org_limit = org_limit();
    let user_changes = [
        Change::Removed,
        Change::Suspended,
        Change::Deactivated,
        Change::Deleted,
        Change::GroupDeleted,
        Change::Renamed,
    ];
    let plan: [(Setup, Vec<Change>); 3] = [
        (
            Setup::GroupAlone,
            [Change::Removed, Change::Suspended]
                .into_iter()
                .chain([Change::GroupDeleted, Change::Renamed, Change::TimeBoundEnd])
                .collect(),
        ),
        (Setup::GroupWithAuthorizer, user_changes.to_vec()),
        (Setup::Users, user_changes.to_vec()),
    ];
    let mut rows = Vec::new();
    for (setup, changes) in plan {
        let demo = match setup {
            Setup::GroupWithAuthorizer => {
                Demo::start_with_authorizer("", operator_bin, "no-opinion", &flags).await
            }
            _ => Demo::start_with("", operator_bin, &flags).await,
        }
        .expect("the demo world");
        if org_limit > 0 {
            demo.sim.set_rate_limits(okta_sim::seed::RateLimitSettings {
                per_minute: ["groups", "group", "group-users"]
                    .map(|bucket| (bucket.to_string(), org_limit))
                    .into(),
                ..Default::default()
            });
        }
        for change in changes {
            match measure(&demo, setup, change, rounds).await {
                Ok(row) => rows.push(row),
                Err(error) => panic!("{} / {}: {error}", setup.describe(), change.describe()),
            }
        }
        drop(demo);
    }
    Some(rows)
}

fn seconds(s: f64) -> String {
    format!("{s:.1} s")
}

pub fn table(rows: &[Row]) -> String {
    let mut text =
        String::from("| setup | change in Okta | rounds | p50 | worst |\n|---|---|---|---|---|\n");
    for row in rows {
        let mut ended: Vec<f64> = row.kept.iter().flatten().copied().collect();
        ended.sort_by(f64::total_cmp);
        let kept = row.kept.len() - ended.len();
        let (p50, worst) = if kept > 0 {
            (
                if kept * 2 > row.kept.len() {
                    format!("kept (past {} s)", give_up().as_secs())
                } else {
                    ended
                        .get(row.kept.len() / 2)
                        .copied()
                        .map_or("-".into(), seconds)
                },
                format!("kept by {kept} tokens past {} s", give_up().as_secs()),
            )
        } else {
            (
                ended
                    .get(ended.len() / 2)
                    .copied()
                    .map_or("-".into(), seconds),
                ended.last().copied().map_or("-".into(), seconds),
            )
        };
        text.push_str(&format!(
            "| {} | {} | {} | {p50} | {worst} |\n",
            row.setup.describe(),
            row.change.describe(),
            row.kept.len()
        ));
    }
    text
}

/// `docs/bench/revocation.md`: what was run, and the table.
pub fn write(path: &Path, cpus: usize, table: &str) {
    let limit = match org_limit() {
        0 => 100,
        limit => limit,
    };
    std::fs::write(
        path,
        format!(
            "# When Okta takes access away\n\nOn one machine with {cpus} CPUs, the demo world \
             (kube-apiserver trusting the local Okta's ID tokens, the operator as its release \
             binary) with a System Log poll of {LOG_INTERVAL} and the local Okta at {limit} \
             group requests a minute: per round a group, a member, an OktaGroupBinding \
             granting `view` in default and the member's real ID token, issued before the \
             change; the time from the change in Okta (for the time-bound end: from \
             `endTime`) until the apiserver refuses that token. The changes of a row are {} ms \
             apart, so that they fall at every phase of the poll. \"Kept\": the token still \
             got in {} s later (it keeps its groups until it expires). Reproduce with \
             `SIZES= LARGE_CASES= AUTHORIZER_SECONDS=0 make bench`.\n\n{table}",
            SPACING.as_millis(),
            give_up().as_secs()
        ),
    )
    .expect("revocation.md");
}

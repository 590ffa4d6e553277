//! The table and the chart of `docs/bench/`.

use crate::results::{PeerResult, SizeResult};
use crate::workload::{NAMESPACES, NAMESPACES_PER_OBJECT};
use std::fmt::Write as _;
use std::path::Path;

fn mib(value: f64) -> String {
    format!("{value:.1} MiB")
}

fn seconds(value: f64) -> String {
    format!("{value:.1} s")
}

pub fn table(results: &[SizeResult]) -> String {
    let mut out = String::new();
    let header: Vec<String> = results
        .iter()
        .map(|r| format!("{} objects ({} bindings)", r.objects, r.objects * 11))
        .collect();
    let _ = writeln!(out, "| | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(results.len()));
    let mut row = |name: &str, cell: &dyn Fn(&SizeResult) -> String| {
        let cells: Vec<String> = results.iter().map(cell).collect();
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    };
    let peer = |r: &SizeResult, pick: &dyn Fn(&PeerResult) -> String| {
        r.peer.as_ref().map_or("not run".to_string(), pick)
    };
    row("**time to converge**", &|_| String::new());
    row("true limit (best concurrency)", &|r| {
        format!("{} ({})", seconds(r.limit.seconds), r.limit.concurrency)
    });
    row("true limit by server-side apply (same concurrency)", &|r| {
        format!(
            "{} ({:.2}×)",
            seconds(r.limit.apply_seconds),
            r.limit.apply_seconds / r.limit.seconds
        )
    });
    row(
        "floor: objects, bindings, statuses, events (best objects at once)",
        &|r| format!("{} ({})", seconds(r.floor.seconds), r.floor.objects_at_once),
    );
    row("okta-rbac-operator", &|r| seconds(r.operator.seconds));
    row("rbac-manager v1.10.0", &|r| {
        peer(r, &|p| seconds(p.seconds))
    });
    row("operator ÷ true limit", &|r| {
        format!("{:.2}×", r.operator.seconds / r.limit.seconds)
    });
    row("operator ÷ floor", &|r| {
        format!("{:.2}×", r.operator.seconds / r.floor.seconds)
    });
    row("rbac-manager ÷ operator", &|r| {
        peer(r, &|p| format!("{:.1}×", p.seconds / r.operator.seconds))
    });
    row("**memory**", &|_| String::new());
    row("operator peak (VmHWM)", &|r| mib(r.operator.peak_mib));
    row("rbac-manager peak", &|r| peer(r, &|p| mib(p.peak_mib)));
    row("operator steady (VmRSS after a quiet resync)", &|r| {
        mib(r.operator.steady_mib)
    });
    row("rbac-manager steady (VmRSS 10 s after converging)", &|r| {
        peer(r, &|p| mib(p.steady_mib))
    });
    row("**CPU (user + system) to converge**", &|_| String::new());
    row("operator", &|r| seconds(r.operator.cpu_seconds));
    row("rbac-manager", &|r| peer(r, &|p| seconds(p.cpu_seconds)));
    row("**apiserver writes**", &|_| String::new());
    row("true limit", &|r| r.limit.writes.to_string());
    row("operator (bindings, status, events)", &|r| {
        r.operator.writes.to_string()
    });
    row("rbac-manager", &|r| peer(r, &|p| p.writes.to_string()));
    row("operator, quiet resync", &|r| {
        r.operator.quiet_writes.to_string()
    });
    row("**one object on the busy cluster**", &|_| String::new());
    row("apply → Ready, p50 / p99", &|r| {
        format!(
            "{:.0} / {:.0} ms",
            r.operator.apply_to_ready.p50 * 1000.0,
            r.operator.apply_to_ready.p99 * 1000.0
        )
    });
    row("delete → bindings revoked, p50 / p99", &|r| {
        format!(
            "{:.0} / {:.0} ms",
            r.operator.delete_to_revoked.p50 * 1000.0,
            r.operator.delete_to_revoked.p99 * 1000.0
        )
    });
    row("group deleted in Okta → bindings revoked", &|r| {
        seconds(r.operator.group_deleted_to_revoked)
    });
    row("**Okta**", &|_| String::new());
    row("requests to converge", &|r| {
        r.operator.okta_requests.to_string()
    });
    row("steady requests per hour, System Log followed", &|r| {
        format!("{:.0}", r.operator.quiet_okta_requests_per_hour)
    });
    row("steady requests per hour, without the System Log", &|r| {
        format!("{:.0}", r.operator.quiet_okta_requests_per_hour_without_log)
    });
    row("objects OktaRateLimited in steady state", &|r| {
        r.operator.rate_limited.to_string()
    });
    out
}

pub fn chart(results: &[SizeResult], path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (960, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(480);
    let max_objects = results.iter().map(|r| r.objects).max().unwrap_or(1) as f64 * 1.05;

    let max_seconds = results
        .iter()
        .map(|r| {
            r.operator
                .seconds
                .max(r.limit.seconds)
                .max(r.peer.as_ref().map_or(0.0, |p| p.seconds))
        })
        .fold(0.0, f64::max)
        * 1.15;
    let mut time = ChartBuilder::on(&left)
        .caption("time to converge (s)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..max_objects, 0.0..max_seconds)?;
    time.configure_mesh()
        .x_desc("OktaGroupBindings (×11 bindings)")
        .draw()?;
    let series = |pick: fn(&SizeResult) -> f64| -> Vec<(f64, f64)> {
        results
            .iter()
            .map(|r| (r.objects as f64, pick(r)))
            .collect()
    };
    let peer_series = |pick: fn(&crate::results::PeerResult) -> f64| -> Vec<(f64, f64)> {
        results
            .iter()
            .filter_map(|r| Some((r.objects as f64, pick(r.peer.as_ref()?))))
            .collect()
    };
    for (label, color, points) in [
        (
            "true limit (direct creates)",
            BLUE,
            series(|r| r.limit.seconds),
        ),
        ("okta-rbac-operator", RED, series(|r| r.operator.seconds)),
        ("rbac-manager v1.10.0", GREEN, peer_series(|p| p.seconds)),
    ] {
        time.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        time.draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
    }
    time.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;

    let max_mib = results
        .iter()
        .map(|r| {
            r.operator
                .peak_mib
                .max(r.peer.as_ref().map_or(0.0, |p| p.peak_mib))
        })
        .fold(0.0, f64::max)
        * 1.15;
    let mut memory = ChartBuilder::on(&right)
        .caption("peak memory (MiB)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..max_objects, 0.0..max_mib)?;
    memory
        .configure_mesh()
        .x_desc("OktaGroupBindings (×11 bindings)")
        .draw()?;
    for (label, color, points) in [
        ("okta-rbac-operator", RED, series(|r| r.operator.peak_mib)),
        ("rbac-manager v1.10.0", GREEN, peer_series(|p| p.peak_mib)),
    ] {
        memory
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        memory.draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
    }
    memory
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Writes `results.md` (the sizes' table with how it was measured) and `bench.svg` into
/// `docs`.
pub fn write_results(docs: &Path, cpus: usize, results: &[SizeResult]) {
    let notes = format!(
        "# Benchmark results\n\nOn one machine with {cpus} CPUs, every object one Okta group with one \
         ClusterRoleBinding and RoleBindings in {NAMESPACES_PER_OBJECT} of {NAMESPACES} \
         namespaces. A fresh control plane per size: the true limit and then the operator \
         on one, the floor and rbac-manager each on one of their own; the local Okta at its \
         default (tightest) rate limits: 100 group searches a minute. The true limit creates \
         the same bindings directly at concurrency 16, 32, 64 and 128 and counts its best \
         run; the floor writes directly everything the operator's run writes (each object, \
         its bindings, a status of the operator's shape and one event) at 3 and 12 objects \
         at a time and counts its best run; the operator runs as the release binary with its \
         defaults (16 reconciles at a time) but for --resync-interval {}; rbac-manager v1.10.0 gets one equivalent RBACDefinition \
         per object. Every time is until the bench's own watch has seen every binding (and, \
         for the operator, every object Ready). Reproduce with `make bench`.\n\n",
        "30 s (5,000 objects: 120 s, so that re-verifying every group fits the budget)"
    );
    std::fs::write(
        docs.join("results.md"),
        format!(
            "{notes}{}\nLarge clusters: [large.md](large.md).\n",
            table(results)
        ),
    )
    .expect("results.md");
    match chart(results, &docs.join("bench.svg")) {
        Ok(()) => eprintln!(">> wrote results.md and bench.svg in {}", docs.display()),
        Err(error) => eprintln!(">> the chart failed: {error}"),
    }
}

/// Writes the large-cluster cases' page.
pub fn write_large(path: &Path, cpus: usize, large_table: &str) {
    std::fs::write(
        path,
        format!(
            "# Large clusters\n\nOn one machine with {cpus} CPUs; reproduce with \
             `SIZES= make bench` (one case: `SIZES= LARGE_CASES=churn make bench`). What \
             the numbers mean: [performance](../performance.md).\n\n{large_table}"
        ),
    )
    .expect("large.md");
}

//! The table and the chart of `docs/bench/`.

use crate::results::SizeResult;
use std::fmt::Write as _;
use std::path::Path;

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
    row("limit: all bindings created", &|r| {
        format!("{:.1} s", r.limit.seconds)
    });
    row("limit: apiserver writes", &|r| r.limit.writes.to_string());
    row("operator: all Ready, all bindings present", &|r| {
        format!("{:.1} s", r.operator.seconds)
    });
    row("operator ÷ limit", &|r| {
        format!("{:.2}×", r.operator.seconds / r.limit.seconds)
    });
    row("operator: Okta requests", &|r| {
        r.operator.okta_requests.to_string()
    });
    row(
        "operator: apiserver writes (bindings, status, events)",
        &|r| r.operator.writes.to_string(),
    );
    row("operator: peak memory (VmHWM)", &|r| {
        format!("{:.1} MiB", r.operator.peak_mib)
    });
    row("operator: CPU (user + system)", &|r| {
        format!("{:.1} s", r.operator.cpu_seconds)
    });
    row("quiet resync: apiserver writes", &|r| {
        r.operator.quiet_writes.to_string()
    });
    row("quiet resync: Okta requests", &|r| {
        r.operator.quiet_okta_requests.to_string()
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
        .map(|r| r.operator.seconds.max(r.limit.seconds))
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
    for (label, color, points) in [
        ("limit (direct creates)", BLUE, series(|r| r.limit.seconds)),
        ("okta-rbac-operator", RED, series(|r| r.operator.seconds)),
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
        .map(|r| r.operator.peak_mib)
        .fold(0.0, f64::max)
        * 1.15;
    let mut memory = ChartBuilder::on(&right)
        .caption("operator peak memory (MiB)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..max_objects, 0.0..max_mib)?;
    memory
        .configure_mesh()
        .x_desc("OktaGroupBindings (×11 bindings)")
        .draw()?;
    let points = series(|r| r.operator.peak_mib);
    memory.draw_series(LineSeries::new(points.clone(), RED.stroke_width(2)))?;
    memory.draw_series(points.iter().map(|p| Circle::new(*p, 4, RED.filled())))?;
    root.present()?;
    Ok(())
}

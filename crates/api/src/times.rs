//! What admission accepts as `startTime` and `endTime`: the RFC 3339 times that everyone
//! downstream reads the same way. The apiserver's own `date-time` format is wider than
//! what the operator's time type holds (`9999-12-31T23:59:59Z` passes it, and no Rust
//! time library of Kubernetes types can hold it), and CEL cannot convert a lowercase `t`
//! or `z` (valid RFC 3339) or a day that does not exist, failing whatever rule touches the
//! field with a parse error. So the fields are plain strings with rules of their own, each
//! guarded so that no rule ever meets a value it cannot evaluate:
//!
//! 1. the shape of an RFC 3339 time (second precision or finer, `Z` or an offset);
//! 2. a day that exists (no February 30);
//! 3. an instant from [`EARLIEST`] to [`LATEST`]: years the operator, the plugin and CEL all
//!    handle, with room for the arithmetic of a far-future boundary.

use schemars::Schema;
use serde_json::json;

/// The earliest time a grant may start or end.
pub const EARLIEST: &str = "1970-01-01T00:00:00Z";
/// The latest: a day before the end of what the operator's time type holds (9999-12-30
/// at 22:00) and what CEL holds (9999-12-31).
pub const LATEST: &str = "9999-12-30T00:00:00Z";

/// The longest time string admitted: a date, a time with nanoseconds and an offset.
const MAX_LENGTH: u32 = 35;

/// RFC 3339 (section 5.6) with seconds from 00 to 59 (no leap second: neither Kubernetes
/// nor the operator can represent one), fractions to the nanosecond, either case of `T`
/// and `Z`. As a CEL string literal, so its backslash is doubled.
const SHAPE: &str = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";

pub const SHAPE_MESSAGE: &str = "must be an RFC 3339 time such as 2026-12-01T09:00:00Z or 2026-12-01T14:30:00+05:30 (a date, T, a time to the second, then Z or an offset)";
pub const DAY_MESSAGE: &str = "names a day that does not exist (such as February 30)";
pub const RANGE_MESSAGE: &str = "must be from 1970-01-01T00:00:00Z to 9999-12-30T00:00:00Z (a grant that never ends has no endTime)";

/// `time` (a CEL expression of a string) has the shape of an RFC 3339 time.
fn shaped(time: &str) -> String {
    format!("{time}.matches('{SHAPE}')")
}

/// The day of a shaped `time` exists in its month (leap years included).
fn day_exists(time: &str) -> String {
    let year = format!("int({time}.substring(0, 4))");
    let month = format!("int({time}.substring(5, 7))");
    let day = format!("int({time}.substring(8, 10))");
    format!(
        "{day} <= ({month} == 2 ? (({year} % 4 == 0 && {year} % 100 != 0) || {year} % 400 == 0 ? 29 : 28) : ({month} in [4, 6, 9, 11] ? 30 : 31))"
    )
}

/// CEL can convert a shaped `time` whose day exists: its date, moved by at most a day
/// by its offset, stays inside CEL's years 0001 to 9999.
fn convertible(time: &str) -> String {
    format!("{time}.substring(0, 10) >= '1969-12-31' && {time}.substring(0, 10) <= '9999-12-30'")
}

/// The instant of a convertible `time` (CEL reads only an uppercase `T` and `Z`).
fn instant(time: &str) -> String {
    format!("timestamp({time}.upperAscii())")
}

/// `time` is a time admission accepts, and CEL may compare its instant.
pub fn comparable(time: &str) -> String {
    format!(
        "{} && {} && {}",
        shaped(time),
        day_exists(time),
        convertible(time)
    )
}

/// The rule of the spec: an end after the start, checked only between two times that
/// each pass their own rules (which say what is wrong with the others).
pub fn end_after_start() -> String {
    let (start, end) = ("self.startTime", "self.endTime");
    format!(
        "!has({start}) || !has({end}) || !({}) || !({}) || {} > {}",
        comparable(start),
        comparable(end),
        instant(end),
        instant(start)
    )
}

/// The schema of `startTime` and `endTime` (their descriptions come from the fields).
pub fn schema(_: &mut schemars::SchemaGenerator) -> Schema {
    let time = "self";
    let valid_day = format!("{} && {}", shaped(time), day_exists(time));
    let in_range = format!(
        "!({valid_day}) || ({} && {at} >= timestamp('{EARLIEST}') && {at} <= timestamp('{LATEST}'))",
        convertible(time),
        at = instant(time),
    );
    let rules = json!([
        {"rule": shaped(time), "message": SHAPE_MESSAGE},
        {"rule": format!("!({}) || {}", shaped(time), day_exists(time)), "message": DAY_MESSAGE},
        {"rule": in_range, "message": RANGE_MESSAGE},
    ]);
    let mut schema = Schema::default();
    schema.insert("type".into(), "string".into());
    schema.insert("maxLength".into(), MAX_LENGTH.into());
    schema.insert("x-kubernetes-validations".into(), rules);
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn read(time: &str) -> Result<Time, serde_json::Error> {
        serde_json::from_value(serde_json::Value::String(time.into()))
    }

    /// What CEL admits is what the operator reads: both ends, lowercase separators, an
    /// offset that carries the last instant past midnight, and nanoseconds.
    #[test]
    fn the_operator_reads_every_time_at_the_edges_of_the_range() {
        for time in [
            EARLIEST,
            LATEST,
            "1969-12-31T23:00:00-01:00",
            "9999-12-29T23:59:59.999999999-00:00",
            "9999-12-30t00:00:00z",
            "2026-12-01t09:00:00+05:30",
            "2028-02-29T00:00:00Z",
        ] {
            read(time).unwrap_or_else(|e| panic!("{time}: {e}"));
        }
    }

    #[test]
    fn the_range_ends_before_what_the_operator_cannot_hold() {
        assert!(read("9999-12-31T23:59:59Z").is_err());
        assert!(read("9999-12-30T00:00:00Z").is_ok());
    }

    #[test]
    fn the_rules_guard_every_conversion() {
        let rule = end_after_start();
        // Every timestamp() of a field comes after the checks that make it convertible.
        for field in ["self.startTime", "self.endTime"] {
            let conversion = rule.find(&instant(field)).expect("converted");
            let guard = rule.find(&comparable(field)).expect("guarded");
            assert!(guard < conversion, "{field}");
        }
    }
}

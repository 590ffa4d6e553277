//! Objects generated from a CRD's own OpenAPI schema, every field at and past its limits,
//! for fuzzing through a real apiserver: lists empty, full and one too long; strings
//! empty, at their length limit and past it, in scripts and control characters a person
//! might paste; numbers at the edges of 32 and 64 bits and past them; every enum value
//! and values of other versions; times at both ends of every range that matters; fields
//! null, absent and of the wrong type. Seeded, so a failure is reproduced by its seed.
//!
//! Written here because no maintained Rust crate generates boundary values from an OpenAPI
//! v3 structural schema (JSON Schema fakers aim at valid instances, in other languages).

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

/// Values that make an object mean something to the system under test: real group
/// names, namespaces and roles, and whole items shaped as the cross-field rules want, so
/// that many generated objects are reconciled all the way, and not only refused.
#[derive(Clone, Debug, Default)]
pub struct Hints {
    /// Values to prefer for a string, by its path (`spec.group`, with `[]` for any item).
    pub by_path: Vec<(String, Vec<String>)>,
    /// Whole values to prefer for an object or item, by its path.
    pub shapes: Vec<(String, Vec<Value>)>,
    /// Times relative to now worth generating (RFC 3339), besides the fixed edges.
    pub times: Vec<String>,
}

/// How hostile each object is: the chance of a value at or past a limit at each choice.
/// A range, so that some objects are plausible throughout and reach the operator, and
/// others are hostile everywhere.
const HOSTILITY: [f64; 6] = [0.0, 0.0, 0.01, 0.03, 0.1, 0.3];

pub struct SchemaFuzz {
    rng: StdRng,
    hints: Hints,
    /// Of the object being made: see [`HOSTILITY`].
    hostility: f64,
}

/// Strings of the kinds people paste: scripts, direction marks, combining marks, control
/// characters, emoji, white space at the edges, path tricks and reserved prefixes.
const STRINGS: &[&str] = &[
    "",
    " ",
    "a",
    "k8s-admins",
    "k8s-ünïcødé-日本語-🚀",
    "k8s-\u{202e}nimda",
    "e\u{0301}",
    "nul\u{0}byte",
    "tab\there",
    "new\nline",
    "\u{7f}del",
    " k8s-padded ",
    "system:masters",
    "system:",
    ".",
    "..",
    "../../etc",
    "a/b",
    "%2F",
    "*",
    "\u{feff}bom",
    "ﬁ-ligature",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
];

/// Times at the edges of every range that matters: the operator's and CEL's, Go's and
/// JSON's, and forms RFC 3339 allows or nearly allows.
pub const TIMES: &[&str] = &[
    "1970-01-01T00:00:00Z",
    "9999-12-30T00:00:00Z",
    "9999-12-30T00:00:00.000000001Z",
    "9999-12-30T22:00:00Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999999Z",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "1969-12-31T23:59:59.999999999Z",
    "1970-01-01T00:00:00+00:01",
    "1970-01-01T00:00:00-00:01",
    "2027-02-29T00:00:00Z",
    "2028-02-29T00:00:00Z",
    "2100-02-29T00:00:00Z",
    "2000-02-29T00:00:00Z",
    "2026-04-31T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-12-01t09:00:00z",
    "2026-12-01T09:00:00+05:30",
    "2026-12-01T09:00:00-23:59",
    "2026-12-01T09:00:00+24:00",
    "2026-12-01T09:00:00-00:00",
    "2026-12-01T24:00:00Z",
    "2026-12-31T23:59:60Z",
    "2026-12-01T09:00:00.1Z",
    "2026-12-01T09:00:00.123456789Z",
    "2026-12-01T09:00:00.1234567891Z",
    "2026-12-01T09:00:00,5Z",
    "2026-12-01T09:00Z",
    "2026-12-01 09:00:00Z",
    "2026-12-01T09:00:00",
    "2026-12-01",
    "+12026-12-01T09:00:00Z",
    "tomorrow",
    "",
];

/// Integers at the edges of 32 and 64 bits, past them, and numbers that are not integers.
fn integers() -> Vec<Value> {
    vec![
        json!(0),
        json!(1),
        json!(-1),
        json!(i32::MAX),
        json!(i64::from(i32::MAX) + 1),
        json!(i32::MIN),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1e20),
        json!(1.5),
        json!("7"),
    ]
}

impl SchemaFuzz {
    pub fn new(seed: u64, hints: Hints) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            hints,
            hostility: 0.1,
        }
    }

    /// The value of a new object for `schema` (its spec or status), at a hostility of its
    /// own.
    pub fn object(&mut self, schema: &Value, path: &str) -> Value {
        self.hostility = self.pick(&HOSTILITY);
        self.value(schema, path)
    }

    /// Whether this choice is a hostile one.
    fn hostile(&mut self) -> bool {
        self.hostility > 0.0 && self.chance(self.hostility)
    }

    fn hinted<T: Clone>(&mut self, hints: &[(String, Vec<T>)], path: &str) -> Option<T> {
        let values = hints
            .iter()
            .find(|(hinted, _)| hinted == path)
            .map(|(_, values)| values.clone())
            .filter(|values| !values.is_empty())?;
        Some(self.pick(&values))
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p)
    }

    fn pick<T: Clone>(&mut self, from: &[T]) -> T {
        from.choose(&mut self.rng)
            .cloned()
            .expect("a non-empty palette")
    }

    /// A value for `schema` at `path` (a field of an object, or an item of a list).
    pub fn value(&mut self, schema: &Value, path: &str) -> Value {
        // A field of the wrong type, or null, now and then, anywhere.
        if self.hostile() && self.chance(0.3) {
            return self.pick(&[
                json!(null),
                json!(true),
                json!(12),
                json!("x"),
                json!([]),
                json!({}),
            ]);
        }
        if !self.hostile()
            && self.chance(0.7)
            && let Some(shape) = self.hinted(&self.hints.shapes.clone(), path)
        {
            return shape;
        }
        if let Some(choices) = schema["enum"].as_array() {
            return self.enum_value(choices);
        }
        match schema["type"].as_str() {
            Some("object") => self.fields(schema, path),
            Some("array") => self.array(schema, path),
            Some("string") if is_time(schema) => self.time(),
            Some("string") => self.string(schema, path),
            Some("integer") => self.integer(),
            Some("boolean") if self.hostile() => self.pick(&[json!("true"), json!(1), json!(null)]),
            Some("boolean") => self.pick(&[json!(true), json!(false), json!(false)]),
            _ => json!({}),
        }
    }

    fn enum_value(&mut self, choices: &[Value]) -> Value {
        if !self.hostile() {
            return self.pick(choices);
        }
        // A value of another version of the CRD, a case change, an empty one.
        let other = choices
            .first()
            .and_then(Value::as_str)
            .map(str::to_lowercase)
            .unwrap_or_default();
        self.pick(&[
            json!("ServiceAccounts"),
            json!(other),
            json!(""),
            json!("Retain "),
        ])
    }

    fn fields(&mut self, schema: &Value, path: &str) -> Value {
        let mut out = Map::new();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(properties) = schema["properties"].as_object() {
            for (name, property) in properties {
                let keep = if required.contains(&name.as_str()) {
                    1.0 - self.hostility / 2.0
                } else {
                    0.6
                };
                if self.chance(keep) {
                    let value = self.value(property, &format!("{path}.{name}"));
                    out.insert(name.clone(), value);
                }
            }
        }
        if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
            let most = schema["maxProperties"].as_u64().unwrap_or(8) as usize;
            let count = if self.hostile() {
                self.pick(&[0, most, most + 1])
            } else {
                self.rng.gen_range(1..=2.min(most))
            };
            for i in 0..count {
                let key = self.label_key(i);
                let value = self.value(values, &format!("{path}[]"));
                out.insert(key, value);
            }
        }
        if self.hostile() && self.chance(0.2) {
            out.insert("fieldOfANewerVersion".into(), json!("x"));
        }
        Value::Object(out)
    }

    fn label_key(&mut self, i: usize) -> String {
        if !self.hostile() {
            return format!("team{i}");
        }
        let keys = [
            format!("team{i}"),
            format!("example.com/k{i}"),
            format!("{}{i}", "k".repeat(63)),
            format!("bad key {i}"),
            format!("ü{i}"),
        ];
        self.pick(&keys)
    }

    fn array(&mut self, schema: &Value, path: &str) -> Value {
        let most = schema["maxItems"].as_u64().unwrap_or(8) as usize;
        let length = if self.hostile() {
            self.pick(&[0, most, most + 1])
        } else {
            self.rng.gen_range(1..=3.min(most))
        };
        let items = &schema["items"];
        Value::Array(
            (0..length)
                .map(|_| self.value(items, &format!("{path}[]")))
                .collect(),
        )
    }

    fn time(&mut self) -> Value {
        if !self.hints.times.is_empty() && !self.hostile() && self.chance(0.7) {
            let times = self.hints.times.clone();
            return json!(self.pick(&times));
        }
        json!(self.pick(TIMES))
    }

    fn string(&mut self, schema: &Value, path: &str) -> Value {
        let hostile = self.hostile();
        if !hostile && let Some(value) = self.hinted(&self.hints.by_path.clone(), path) {
            return json!(value);
        }
        if !hostile {
            return json!(format!("v{}", self.rng.gen_range(0..100)));
        }
        let longest = schema["maxLength"].as_u64().unwrap_or(64) as usize;
        let choice = self.rng.gen_range(0..6);
        let text = match choice {
            0 => "x".repeat(longest),
            1 => "x".repeat(longest + 1),
            // Multibyte at the limit: maxLength counts characters, etcd bytes.
            2 => "é".repeat(longest),
            3 => format!("k8s-{}", "🚀".repeat(longest.saturating_sub(4))),
            _ => self.pick(STRINGS).to_string(),
        };
        json!(text)
    }

    fn integer(&mut self) -> Value {
        if !self.hostile() {
            return json!(self.rng.gen_range(0..10));
        }
        let values = integers();
        self.pick(&values)
    }

    /// Annotations: usually a few, sometimes at the apiserver's limit for all of an
    /// object's annotations (256 KiB), or a byte past it.
    pub fn annotations(&mut self) -> Option<Value> {
        const LIMIT: usize = 256 * 1024;
        let key = "fuzz.example.com/note";
        match self.rng.gen_range(0..20) {
            0 => Some(json!({ key: "x".repeat(LIMIT - key.len()) })),
            1 => Some(json!({ key: "x".repeat(LIMIT - key.len() + 1) })),
            2..=5 => Some(json!({ key: self.pick(STRINGS) })),
            _ => None,
        }
    }
}

/// A time field of ours: a string whose rules convert it with `timestamp()`, or one in
/// the `date-time` format.
fn is_time(schema: &Value) -> bool {
    schema["format"] == "date-time"
        || schema["x-kubernetes-validations"]
            .as_array()
            .is_some_and(|rules| {
                rules
                    .iter()
                    .any(|r| r["rule"].as_str().is_some_and(|r| r.contains("timestamp(")))
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["group"],
            "properties": {
                "group": {"type": "string", "maxLength": 8},
                "kind": {"type": "string", "enum": ["Group", "Users"]},
                "count": {"type": "integer"},
                "list": {"type": "array", "maxItems": 3, "items": {"type": "string", "maxLength": 2}},
                "labels": {"type": "object", "maxProperties": 2, "additionalProperties": {"type": "string"}},
                "end": {"type": "string", "x-kubernetes-validations": [{"rule": "timestamp(self) > timestamp('1970-01-01T00:00:00Z')"}]}
            }
        })
    }

    #[test]
    fn the_same_seed_makes_the_same_objects() {
        let make = |seed| {
            let mut fuzz = SchemaFuzz::new(seed, Hints::default());
            (0..20)
                .map(|_| fuzz.object(&schema(), "spec"))
                .collect::<Vec<_>>()
        };
        assert_eq!(make(7), make(7));
        assert_ne!(make(7), make(8));
    }

    #[test]
    fn limits_are_reached_and_passed() {
        let mut fuzz = SchemaFuzz::new(1, Hints::default());
        let objects: Vec<Value> = (0..3000).map(|_| fuzz.object(&schema(), "spec")).collect();
        let lengths = |field: &str| -> Vec<usize> {
            objects
                .iter()
                .filter_map(|o| o[field].as_array().map(Vec::len))
                .collect()
        };
        assert!(lengths("list").contains(&3) && lengths("list").contains(&4));
        let groups: Vec<&str> = objects.iter().filter_map(|o| o["group"].as_str()).collect();
        assert!(groups.contains(&"xxxxxxxx") && groups.contains(&"xxxxxxxxx"));
        let ends: Vec<&str> = objects.iter().filter_map(|o| o["end"].as_str()).collect();
        assert!(ends.contains(&"9999-12-31T23:59:59Z") && ends.contains(&"2026-12-01t09:00:00z"));
        let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
        assert!(kinds.contains(&"Users") && kinds.contains(&"ServiceAccounts"));
        assert!(
            objects
                .iter()
                .any(|o| o["count"] == json!(i64::from(i32::MAX) + 1))
        );
        assert!(
            objects
                .iter()
                .any(|o| o["labels"].as_object().is_some_and(|l| l.len() == 3))
        );
    }
}

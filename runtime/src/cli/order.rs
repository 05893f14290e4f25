//! JSON output in runc's field order. serde_json's objects sort their keys; runc prints Go
//! structs, whose fields keep their declaration order, and scripts compare output literally.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// runc's containerState (`state`, `list --format json`); `annotations` is omitempty there.
pub const STATE: &[&str] = &[
    "ociVersion",
    "id",
    "pid",
    "status",
    "bundle",
    "rootfs",
    "created",
    "annotations",
    "owner",
];

/// runc's events.Event; `data` is omitempty there.
pub const EVENT: &[&str] = &["type", "id", "data"];

/// An object whose keys serialize in the order given.
pub struct Ordered<'a>(Vec<(&'a str, &'a Value)>);

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// `v`'s fields in `keys` order, empty or null ones left out as Go's omitempty does (only
/// `annotations` and `data` can be), then any others in their own order.
pub fn ordered<'a>(v: &'a Value, keys: &[&'a str]) -> Ordered<'a> {
    let empty = |x: &Value| x.is_null() || x.as_object().is_some_and(|o| o.is_empty());
    let omit = |k: &str, x: &Value| (k == "annotations" || k == "data") && empty(x);
    let mut out: Vec<(&str, &Value)> = keys
        .iter()
        .filter_map(|k| v.get(*k).map(|x| (*k, x)))
        .filter(|(k, x)| !omit(k, x))
        .collect();
    for (k, x) in v.as_object().into_iter().flatten() {
        if !keys.contains(&k.as_str()) {
            out.push((k, x));
        }
    }
    Ordered(out)
}

//! Typed JSON parsing whose errors name the field they failed at (`process.args[0]`), for
//! one-line errors about config.json, `exec --process` and `update --resources`.
//!
//! serde_json reports where a document failed (line and column); [`path_at`] walks the text
//! up to there and names the key and index path, spelled as serde_path_to_error spells it.
//! Why not that crate: its wrapper instantiates the deserializer of every Spec type a second
//! time, about 700 KB of code in a 5 MB binary, and a runtime pays at every start for the
//! code pages it maps (bench/README.md). This walk is a few dozen lines.

use serde::de::DeserializeOwned;

/// Where a document failed: the field (or `(document)`) and serde_json's message.
#[derive(Debug)]
pub struct PathError {
    pub field: String,
    pub msg: String,
}

/// Parses `data` as a `T`; on failure names the field serde_json stopped at.
pub fn from_slice<T: DeserializeOwned>(data: &[u8]) -> Result<T, PathError> {
    serde_json::from_slice(data).map_err(|e| {
        let full = e.to_string();
        let at = format!(" at line {} column {}", e.line(), e.column());
        let msg = full.strip_suffix(&at).unwrap_or(&full).to_string();
        let field = if e.line() == 0 {
            String::new()
        } else {
            path_at(data, e.line(), e.column())
        };
        PathError {
            field: if field.is_empty() {
                "(document)".to_string()
            } else {
                field
            },
            msg,
        }
    })
}

enum Frame {
    /// An object and the key whose value is being read (None: a key comes next).
    Obj(Option<String>),
    /// An array and the index of the element being read.
    Arr(usize),
}

/// The path of the value being read when serde_json had consumed the text up to `line`
/// and `column` (1-based, in bytes, as serde_json counts them): `process.args[0]`.
pub fn path_at(text: &[u8], line: usize, column: usize) -> String {
    let end = offset_of(text, line, column);
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < end {
        match text[i] {
            b'{' => stack.push(Frame::Obj(None)),
            b'[' => stack.push(Frame::Arr(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Arr(n)) => *n += 1,
                Some(Frame::Obj(k)) => *k = None,
                None => {}
            },
            b'"' => {
                let close = string_end(text, i);
                if let Some(Frame::Obj(k @ None)) = stack.last_mut() {
                    let raw = &text[i..(close + 1).min(text.len())];
                    *k = Some(serde_json::from_slice(raw).unwrap_or_else(|_| {
                        // An unterminated key at the end is a lone `"` or `"abc`: no closing quote.
                        let inner = raw.strip_prefix(b"\"").unwrap_or(raw);
                        let inner = inner.strip_suffix(b"\"").unwrap_or(inner);
                        String::from_utf8_lossy(inner).into()
                    }));
                }
                i = close + 1;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    let mut out = String::new();
    for f in &stack {
        match f {
            Frame::Obj(Some(k)) if out.is_empty() => out.push_str(k),
            Frame::Obj(Some(k)) => {
                out.push('.');
                out.push_str(k);
            }
            Frame::Obj(None) => {}
            Frame::Arr(n) => out.push_str(&format!("[{n}]")),
        }
    }
    out
}

/// The byte offset just past `column` bytes of line `line`.
fn offset_of(text: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].iter().position(|&b| b == b'\n') {
            Some(p) => start += p + 1,
            None => return text.len(),
        }
    }
    (start + column).min(text.len())
}

/// The index of the quote closing the string that opens at `open` (or the text's end).
fn string_end(text: &[u8], open: usize) -> usize {
    let mut j = open + 1;
    while j < text.len() {
        match text[j] {
            b'\\' => j += 2,
            b'"' => return j,
            _ => j += 1,
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Spec;

    fn field_of(doc: &str) -> String {
        from_slice::<Spec>(doc.as_bytes()).unwrap_err().field
    }

    #[test]
    fn names_keys_and_indexes_as_serde_path_to_error_does() {
        let doc = r#"{"ociVersion":"1.0.2","process":{"args":["sh",1],"cwd":"/"}}"#;
        assert_eq!(field_of(doc), "process.args[1]");
        let doc = "{\n \"ociVersion\": \"1.0.2\",\n \"linux\": {\"namespaces\": [\n  {\"type\": \"pid\"},\n  {\"type\": \"bogus\"}\n ]}\n}";
        assert_eq!(field_of(doc), "linux.namespaces[1].type");
        let doc = r#"{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/","user":{"uid":"x","gid":0}}}"#;
        assert_eq!(field_of(doc), "process.user.uid");
    }

    #[test]
    fn missing_fields_escapes_and_syntax() {
        // A missing field is reported at the object that lacks it.
        let doc = r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/a"},{"type":"tmpfs"}]}"#;
        assert_eq!(field_of(doc), "mounts[1]");
        assert_eq!(field_of("42"), "(document)");
        // Quotes and commas inside strings are not structure.
        let doc =
            r#"{"ociVersion":"1.0.2","annotations":{"a\",b":"[{,"},"process":{"args":[true]}}"#;
        assert_eq!(field_of(doc), "process.args[0]");
        let e =
            from_slice::<Spec>(br#"{"ociVersion": "1.0.2", "process": {"args": ["#).unwrap_err();
        assert_eq!(e.field, "process.args[0]");
        assert!(
            e.msg.contains("EOF") && !e.msg.contains(" at line "),
            "{e:?}"
        );
    }

    /// Found by bench/fuzz (target config, 153,264 runs): a document that ends right after
    /// a key's opening quote made the key's text a lone `"`, sliced as `[1..0]`: a panic,
    /// so `berth create` aborted on a truncated config.json instead of naming the error.
    #[test]
    fn a_document_ending_in_an_open_key_is_an_error() {
        let crash = b"{\n \"hostname\": \"berth\",\n \"linux\": {\n  \"maskedPaths\": [\n   \"/proc/acpi\",\n   \"/proc/asound\",\n   \"/proc/kcore\",\n   \"/proc/keys\",\n   \"/proc/latency_stats\",\n   \"/proc/timer_list\",\n   \"/proc/timer_stats\",\n   \"/proc/sched_debug\",\n   \"/sys/firmware\",{\n \"";
        let e = from_slice::<oci_spec::runtime::Process>(crash).unwrap_err();
        assert!(e.msg.contains("EOF"), "{e:?}");
        assert_eq!(field_of("{\"ociVersion\": \"1.0.2\", \""), "(document)");
        assert_eq!(path_at(b"{\"a\": {\"bc", 1, 11), "a.bc");
    }
}

//! Checks on untrusted JSON values. Every failure is a
//! [`ErrorKind::ManifestInvalid`] whose message names the offending field by
//! its path, such as `layers[2].size`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::media_type;

/// A JSON object.
pub(super) type Object = Map<String, Value>;

/// How many characters of an offending value a message repeats.
const MAX_QUOTED_CHARS: usize = 80;

/// A `MANIFEST_INVALID` error.
pub(super) fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::ManifestInvalid, message)
}

/// The path of `key` inside `parent`; the top level is the empty path.
pub(super) fn path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// `s` quoted for a message, cut short if long.
pub(super) fn quote(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{:?}...", s.get(..cut).unwrap_or(s)),
        None => format!("{s:?}"),
    }
}

/// The JSON type of `v`, for messages.
pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A field of `obj`. `null` counts as absent, as it does for the Go
/// clients and registries that produce and accept most manifests.
pub(super) fn field<'a>(obj: &'a Object, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// A field that must be present (and not `null`).
pub(super) fn required<'a>(obj: &'a Object, parent: &str, key: &str) -> Result<&'a Value> {
    field(obj, key).ok_or_else(|| invalid(format!("{} is required", path(parent, key))))
}

fn wrong_type(at: &str, expected: &str, found: &Value) -> Error {
    invalid(format!(
        "{at} must be {expected}, found {}",
        type_name(found)
    ))
}

/// `v` as an object.
pub(super) fn as_object<'a>(v: &'a Value, at: &str) -> Result<&'a Object> {
    v.as_object().ok_or_else(|| wrong_type(at, "an object", v))
}

/// `v` as a string.
pub(super) fn as_str<'a>(v: &'a Value, at: &str) -> Result<&'a str> {
    v.as_str().ok_or_else(|| wrong_type(at, "a string", v))
}

/// `v` as an array.
pub(super) fn as_array<'a>(v: &'a Value, at: &str) -> Result<&'a [Value]> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| wrong_type(at, "an array", v))
}

/// `v` as a well-formed media type.
pub(super) fn media_type(v: &Value, at: &str) -> Result<String> {
    let s = as_str(v, at)?;
    if media_type::is_valid(s) {
        Ok(s.to_owned())
    } else {
        Err(invalid(format!(
            "{at} is not a valid media type: {}",
            quote(s)
        )))
    }
}

/// An optional media-type field such as `artifactType`. An empty string
/// counts as absent: the distribution spec speaks of an `artifactType` that
/// is "empty or missing".
pub(super) fn optional_media_type(obj: &Object, parent: &str, key: &str) -> Result<Option<String>> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(v) => media_type(v, &path(parent, key)).map(Some),
    }
}

/// `v` as a size: an integer from 0 to `i64::MAX` (the spec's int64, minus
/// the negative half). Floats, even `1.0`, and strings are refused.
pub(super) fn size(v: &Value, at: &str) -> Result<u64> {
    let Value::Number(n) = v else {
        return Err(wrong_type(at, "an integer", v));
    };
    match n.as_i64() {
        Some(i) => {
            u64::try_from(i).map_err(|_| invalid(format!("{at} must not be negative, found {i}")))
        }
        None if n.as_u64().is_some() => Err(invalid(format!(
            "{at} is out of range: {n} is larger than an int64"
        ))),
        None => Err(invalid(format!("{at} must be an integer, found {n}"))),
    }
}

/// `v` as an array of strings.
pub(super) fn string_list(v: &Value, at: &str) -> Result<Vec<String>> {
    as_array(v, at)?
        .iter()
        .enumerate()
        .map(|(i, item)| as_str(item, &format!("{at}[{i}]")).map(str::to_owned))
        .collect()
}

/// The optional `annotations` field of `obj`: a map of strings to strings.
pub(super) fn annotations(obj: &Object, parent: &str) -> Result<BTreeMap<String, String>> {
    let Some(v) = field(obj, "annotations") else {
        return Ok(BTreeMap::new());
    };
    let at = path(parent, "annotations");
    as_object(v, &at)?
        .iter()
        .map(|(key, value)| {
            let value = as_str(value, &format!("{at}[{}]", quote(key)))?;
            Ok((key.clone(), value.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(&json!(0), "s").unwrap(), 0);
        assert_eq!(size(&json!(i64::MAX), "s").unwrap(), i64::MAX as u64);
        for bad in [
            json!(-1),
            json!(1.0),
            json!(1.5),
            json!(1e3),
            json!("12"),
            json!(null),
        ] {
            assert_eq!(
                size(&bad, "s").unwrap_err().kind(),
                ErrorKind::ManifestInvalid,
                "{bad}"
            );
        }
        let too_big: Value = serde_json::from_str("9223372036854775808").unwrap();
        assert!(size(&too_big, "s").unwrap_err().message().contains("int64"));
        let huge: Value = serde_json::from_str("123456789012345678901234567890").unwrap();
        assert!(size(&huge, "s").is_err());
    }

    #[test]
    fn quote_cuts_long_values_at_a_char_boundary() {
        assert_eq!(quote("ab"), "\"ab\"");
        let long = "\u{e9}".repeat(200);
        let q = quote(&long);
        assert!(q.ends_with("...") && q.chars().count() < 100, "{q}");
    }

    #[test]
    fn paths_name_the_field() {
        assert_eq!(path("", "config"), "config");
        assert_eq!(path("layers[1]", "size"), "layers[1].size");
        let obj = json!({"annotations": {"k": 1}});
        let e = annotations(obj.as_object().unwrap(), "layers[0]").unwrap_err();
        assert_eq!(
            e.message(),
            "layers[0].annotations[\"k\"] must be a string, found a number"
        );
    }
}

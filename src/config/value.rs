//! Value types of the configuration that carry a rule: each rule is written once here
//! and applies wherever the value appears.
//!
//! Two ways, chosen by how the error is best reported:
//! - [`Name`] validates while deserializing: a bad name stops the parse with the file's
//!   line, as a type error does.
//! - [`PeerId`], [`Endpoint`] and [`Dedupe`]'s bounds are checked by the plan
//!   ([`crate::plan`]), which collects every such error of a file at its path, so one
//!   run of `sluice check` lists them all.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// A resource name (bus, rule, target, source, function, connector, schema): it ends up
/// in Redis keys and URLs, so it keeps to a safe alphabet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// Checks a name: 1 to 64 letters, digits, `-`, `_` and `.`.
    pub fn check(name: &str) -> Result<(), String> {
        if name.is_empty() || name.len() > 64 {
            return Err("must be 1 to 64 characters".into());
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(format!(
                "{name:?} may contain only letters, digits, '-', '_' and '.'"
            ));
        }
        Ok(())
    }

    pub fn new(name: &str) -> Result<Name, String> {
        Name::check(name).map(|()| Name(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Name::new(&text).map_err(serde::de::Error::custom)
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl From<Name> for String {
    fn from(n: Name) -> String {
        n.0
    }
}

/// The id of a gateway or cloud bus in bridge traces (`sluicepath`, docs/bridges.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct PeerId(pub String);

impl PeerId {
    pub fn check(&self) -> Result<(), String> {
        if crate::event::bridge::valid_id(&self.0) {
            Ok(())
        } else {
            Err("must be non-empty, without commas or spaces".into())
        }
    }
}

/// The API endpoint of a cloud service: `https://`, or `http://` for a loopback address
/// (a local emulator).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Endpoint(pub String);

impl Endpoint {
    pub fn check(&self) -> Result<(), String> {
        match url::Url::parse(&self.0) {
            Ok(u) if u.scheme() == "https" && u.host_str().is_some() => Ok(()),
            Ok(u) if u.scheme() == "http" && is_loopback(&u) => Ok(()),
            Ok(u) if u.scheme() == "http" => Err(
                "http:// is allowed only for loopback addresses (a local emulator); use https://"
                    .into(),
            ),
            Ok(_) => Err("must be an http(s) URL".into()),
            Err(e) => Err(format!("invalid URL: {e}")),
        }
    }
}

/// Whether a URL names this machine.
pub fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Longest `dedupe` window. Bounded so the key's TTL (milliseconds, `SET ... PX`) is
/// always one Redis accepts: a TTL Redis refused would fail the append script.
pub const MAX_DEDUPE: Duration = Duration::from_secs(365 * 24 * 3600);

/// `dedupe:` a duration or `off`. Default 24h.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dedupe(pub Option<Duration>);

impl Default for Dedupe {
    fn default() -> Self {
        Dedupe(Some(Duration::from_secs(24 * 3600)))
    }
}

impl Dedupe {
    /// The window's bounds: 1ms to [`MAX_DEDUPE`].
    pub fn check(&self) -> Result<(), String> {
        match self.0 {
            Some(w) if w.as_millis() == 0 => Err("must be at least 1ms, or off".into()),
            Some(w) if w > MAX_DEDUPE => Err("must be at most 365d, or off".into()),
            _ => Ok(()),
        }
    }
}

impl<'de> Deserialize<'de> for Dedupe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `off` may arrive as a boolean from YAML 1.1-minded writers (`dedupe: false`).
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Bool(false) => return Ok(Dedupe(None)),
            Raw::Bool(true) => return Ok(Dedupe::default()),
            Raw::Text(text) if text == "off" => return Ok(Dedupe(None)),
            Raw::Text(text) => text,
        };
        humantime::parse_duration(&text)
            .map(|w| Dedupe(Some(w)))
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid dedupe window {text:?} ({e}); write e.g. 10m, 24h, or off"
                ))
            })
    }
}

/// A secret as written in the config. `Debug` shows `env:`/`file:` references but
/// never a literal secret.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretRef(pub String);

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.starts_with("env:") || self.0.starts_with("file:") {
            write!(f, "{:?}", self.0)
        } else {
            f.write_str("\"***\"")
        }
    }
}

impl SecretRef {
    /// Resolves the reference (see [`resolve_secret`]).
    pub fn resolve(&self) -> Result<Secret, String> {
        resolve_secret(&self.0)
    }
}

/// A resolved secret. Its bytes never appear in `Debug` output (nor in logs).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Resolves a secret reference: `env:NAME`, `file:PATH` (one trailing newline dropped,
/// as editors and `echo` add one) or a literal.
pub fn resolve_secret(reference: &str) -> Result<Secret, String> {
    if let Some(name) = reference.strip_prefix("env:") {
        match std::env::var(name) {
            Ok(v) if !v.is_empty() => Ok(Secret(v.into_bytes())),
            Ok(_) => Err(format!("environment variable {name} is empty")),
            Err(_) => Err(format!("environment variable {name} is not set")),
        }
    } else if let Some(path) = reference.strip_prefix("file:") {
        let mut bytes =
            std::fs::read(path).map_err(|e| format!("cannot read secret file {path}: {e}"))?;
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        if bytes.is_empty() {
            return Err(format!("secret file {path} is empty"));
        }
        Ok(Secret(bytes))
    } else if reference.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(Secret(reference.as_bytes().to_vec()))
    }
}

/// Decodes a Standard Webhooks secret (`whsec_` + base64; the prefix is optional).
pub fn decode_whsec(secret: &[u8]) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let text = secret.strip_prefix(b"whsec_").unwrap_or(secret);
    match base64::engine::general_purpose::STANDARD.decode(text) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => Err("not a Standard Webhooks secret (whsec_ followed by base64)".into()),
    }
}

/// A duration written as `500ms`, `10s`, `5m`, `24h`, `7d`.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "invalid duration {text:?} ({e}); write e.g. 500ms, 10s, 5m, 24h, 7d"
        ))
    })
}

/// An optional [`duration`] (use with `#[serde(default)]`).
pub fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// Refuses fields of other kinds and unknown fields of a kind-tagged config (`kind`,
/// whose own fields and misplaced or unknown ones are all in `fields`): a misplaced
/// option would otherwise be silently ignored, which for security settings is worse
/// than a typo. `table` lists each kind's own fields in the order messages name the
/// kinds; `misplaced(owners)` words the error of a field of other kinds, `unknown` that
/// of a field no kind has.
pub fn check_kind_fields<K: Copy + PartialEq>(
    kind: K,
    table: &[(K, &'static [&'static str])],
    fields: &std::collections::BTreeMap<String, serde::de::IgnoredAny>,
    at: &str,
    errors: &mut crate::config::Errors,
    misplaced: impl Fn(&[K]) -> String,
    unknown: impl Fn(&str) -> String,
) {
    let own = table
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[][..], |t| t.1);
    // In the order of the table, so messages come in a stable, documented order.
    let mut seen = std::collections::HashSet::new();
    let ordered = table
        .iter()
        .flat_map(|(_, fields)| fields.iter().copied())
        .filter(|f| seen.insert(*f));
    for field in ordered {
        if !fields.contains_key(field) || own.contains(&field) {
            continue;
        }
        let owners: Vec<K> = table
            .iter()
            .filter(|(_, fields)| fields.contains(&field))
            .map(|(k, _)| *k)
            .collect();
        errors.at(format!("{at}.{field}"), misplaced(&owners));
    }
    for field in fields.keys() {
        if field != "kind" && !seen.contains(field.as_str()) {
            errors.at(format!("{at}.{field}"), unknown(field));
        }
    }
}

/// Names as prose: `a`, `a and b`, `a, b and c`.
pub fn and_list(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

/// The field names of a config struct, as its `Deserialize` declares them (serde passes
/// them to `deserialize_struct`); empty for a type that is not a plain struct. Used to
/// tell which kind a misplaced field belongs to.
pub fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Fields(&'static [&'static str]);
    #[derive(Debug)]
    struct Stop;
    impl fmt::Display for Stop {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<M: fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> Deserializer<'de> for &mut Fields {
        type Error = Stop;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = fields;
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields = Fields(&[]);
    let _ = T::deserialize(&mut fields);
    fields.0
}

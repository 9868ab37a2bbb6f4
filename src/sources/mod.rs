//! Webhook sources: verification of SaaS webhooks (`verify`) and their normalisation
//! into CloudEvents (`normalize`). Pure: the HTTP handler in `ingress` reads the body,
//! calls [`Source::verifier`] and [`Source::normalize`], and appends through `bus`.
//!
//! Each provider's mapping (id, source, type, time, extensions) is documented with a
//! sample in `docs/sources.md`; keep the two in step.
//!
//! Rejected requests are logged at warn level with the source and the reason, and
//! counted in `/metrics` (`sluice_webhook_rejected_total`, docs/operations.md). Not
//! built yet: ed25519 (`v1a`) Standard Webhooks signatures.
//!
//! Cloud-compatible ingest (AWS and Alibaba PutEvents, with their signatures) is in
//! `compat/`, one folder per cloud.

pub mod envelope;
mod normalize;

pub mod verify;

use std::time::Duration;

use actix_web::http::header::HeaderName;

use crate::config::{
    Errors, HmacAlgorithm, Secret, SecretRef, SignatureEncoding, SourceConfig, SourceKind,
};

pub use normalize::{Normalized, Outcome};
pub use verify::{Rejection, Request, Verifier};

/// Default tolerance of timestamped schemes (Stripe's and Slack's libraries use 5 min).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

pub use crate::config::value::MAX_DEDUPE;

/// A configured webhook source, compiled.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub kind: SourceKind,
    pub bus: String,
    pub verifier: Verifier,
    /// Dedupe window; `None` when `dedupe: off`.
    pub dedupe: Option<Duration>,
    /// The configured CloudEvents `source`, overriding the derived one.
    pub source: Option<String>,
    /// Header carrying the delivery id, for the generic kinds.
    pub id_header: Option<HeaderName>,
    /// aws-api-destination: the id of the AWS side in bridge traces.
    pub peer: Option<String>,
}

/// Kinds whose signature covers a timestamp (and so have a tolerance window).
fn timestamped(config: &SourceConfig) -> bool {
    match config.kind {
        SourceKind::Stripe | SourceKind::Slack | SourceKind::StandardWebhooks => true,
        SourceKind::Hmac => config.timestamp_header.is_some(),
        _ => false,
    }
}

impl Source {
    /// Compiles a source with its resolved secrets (from [`resolve_secrets`], one per
    /// configured secret, `None` for one that failed to resolve). Errors are (field
    /// relative to the source, message) pairs.
    pub fn compile(
        config: &SourceConfig,
        resolved_secrets: &[Option<Secret>],
    ) -> Result<Source, Vec<(String, String)>> {
        let mut errors: Vec<(String, String)> = Vec::new();
        let mut err = |field: &str, message: String| errors.push((field.to_string(), message));
        let kind = config.kind;

        // Per-kind options are errors elsewhere: a misplaced option would otherwise be
        // silently ignored, which for security settings is worse than a typo.
        let options: [(&str, bool, &[SourceKind]); 10] = [
            ("url", config.url.is_some(), &[SourceKind::Twilio]),
            (
                "header",
                config.header.is_some(),
                &[
                    SourceKind::Hmac,
                    SourceKind::Token,
                    SourceKind::AwsApiDestination,
                ],
            ),
            (
                "peer",
                config.peer.is_some(),
                &[SourceKind::AwsApiDestination],
            ),
            ("algorithm", config.algorithm.is_some(), &[SourceKind::Hmac]),
            ("encoding", config.encoding.is_some(), &[SourceKind::Hmac]),
            ("prefix", config.prefix.is_some(), &[SourceKind::Hmac]),
            (
                "timestamp_header",
                config.timestamp_header.is_some(),
                &[SourceKind::Hmac],
            ),
            (
                "signed_content",
                config.signed_content.is_some(),
                &[SourceKind::Hmac],
            ),
            (
                "id_header",
                config.id_header.is_some(),
                &[SourceKind::Hmac, SourceKind::Token, SourceKind::Basic],
            ),
            (
                "username",
                config.username.is_some(),
                &[SourceKind::Basic, SourceKind::AwsApiDestination],
            ),
        ];
        for (field, set, kinds) in options {
            if set && !kinds.contains(&kind) {
                let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                err(
                    field,
                    format!(
                        "applies only to kind {}, not {}",
                        names.join(" or "),
                        kind.as_str()
                    ),
                );
            }
        }
        if config.tolerance.is_some() && !timestamped(config) {
            err(
                "tolerance",
                format!(
                    "kind {} signs no timestamp{}",
                    kind.as_str(),
                    if kind == SourceKind::Hmac {
                        " unless timestamp_header is set"
                    } else {
                        ""
                    }
                ),
            );
        }
        // Timestamps are whole seconds: a sub-second tolerance would truncate to 0.
        let tolerance = config.tolerance.unwrap_or(DEFAULT_TOLERANCE);
        if tolerance < Duration::from_secs(1) {
            err(
                "tolerance",
                "must be at least 1s (signed timestamps are whole seconds)".into(),
            );
        }
        if let Err(m) = config.dedupe.check() {
            err("dedupe", m);
        }
        if config
            .peer
            .as_deref()
            .is_some_and(|p| !crate::event::bridge::valid_id(p))
        {
            err("peer", "must be non-empty, without commas or spaces".into());
        }
        if let Some(source) = &config.source {
            if source.is_empty() || source.contains(char::is_whitespace) {
                err(
                    "source",
                    "must be a non-empty URI reference without spaces".into(),
                );
            }
        }
        let header_name =
            |field: &str, value: &Option<String>| -> Result<Option<HeaderName>, (String, String)> {
                value
                    .as_deref()
                    .map(|v| {
                        HeaderName::from_bytes(v.as_bytes())
                            .map_err(|_| (field.to_string(), format!("{v:?} is not a header name")))
                    })
                    .transpose()
            };
        let id_header = header_name("id_header", &config.id_header).unwrap_or_else(|e| {
            err(&e.0, e.1);
            None
        });

        // Standard Webhooks secrets are `whsec_` + base64 of the key bytes.
        // `resolved_secrets` has one entry per configured secret, so `i` is its index;
        // one that failed to resolve already has its error.
        let mut secrets = Vec::with_capacity(resolved_secrets.len());
        for (i, secret) in resolved_secrets.iter().enumerate() {
            let Some(secret) = secret else { continue };
            if kind != SourceKind::StandardWebhooks {
                secrets.push(secret.0.clone());
                continue;
            }
            match crate::config::decode_whsec(&secret.0) {
                Ok(key) => secrets.push(key),
                Err(message) => err(&secret_field(config, i), message),
            }
        }

        let scheme = match kind {
            SourceKind::Github => verify::Scheme::Github,
            SourceKind::Stripe => verify::Scheme::Stripe,
            SourceKind::Slack => verify::Scheme::Slack,
            SourceKind::Shopify => verify::Scheme::Shopify,
            SourceKind::StandardWebhooks => verify::Scheme::StandardWebhooks,
            SourceKind::Gitlab => verify::Scheme::Gitlab,
            SourceKind::Twilio => {
                let url = config.url.clone().unwrap_or_default();
                match url::Url::parse(&url) {
                    _ if config.url.is_none() => err(
                        "url",
                        "kind twilio needs the public URL Twilio calls (it is signed)".into(),
                    ),
                    Ok(u) if matches!(u.scheme(), "http" | "https") && u.query().is_none() => {}
                    Ok(_) => err(
                        "url",
                        "must be an http(s) URL without query string (the request's own query is appended)".into(),
                    ),
                    Err(e) => err("url", format!("invalid URL: {e}")),
                }
                verify::Scheme::Twilio { url }
            }
            SourceKind::Hmac => {
                let header = match header_name("header", &config.header) {
                    Ok(Some(h)) => Some(h),
                    Ok(None) => {
                        err("header", "kind hmac needs the signature header".into());
                        None
                    }
                    Err(e) => {
                        err(&e.0, e.1);
                        None
                    }
                };
                let timestamp_header = header_name("timestamp_header", &config.timestamp_header)
                    .unwrap_or_else(|e| {
                        err(&e.0, e.1);
                        None
                    });
                let default_template = if timestamp_header.is_some() {
                    "{timestamp}.{body}"
                } else {
                    "{body}"
                };
                let template = config.signed_content.as_deref().unwrap_or(default_template);
                let template = match verify::parse_template(template) {
                    Ok(t) => t,
                    Err(m) => {
                        err("signed_content", m);
                        Vec::new()
                    }
                };
                let uses_ts = template.contains(&verify::Part::Timestamp);
                if uses_ts && timestamp_header.is_none() {
                    err(
                        "signed_content",
                        "uses {timestamp} but timestamp_header is not set".into(),
                    );
                }
                // An unsigned timestamp could be replaced by a replayer: the tolerance
                // window would then prove nothing.
                if !uses_ts && config.timestamp_header.is_some() && !template.is_empty() {
                    err(
                        "signed_content",
                        "must contain {timestamp} when timestamp_header is set (an unsigned timestamp does not prevent replays)".into(),
                    );
                }
                verify::Scheme::Hmac(Box::new(verify::HmacScheme {
                    header: header.unwrap_or(HeaderName::from_static("x-signature")),
                    algorithm: config.algorithm.unwrap_or(HmacAlgorithm::Sha256),
                    encoding: config.encoding.unwrap_or(SignatureEncoding::Hex),
                    prefix: config.prefix.clone().unwrap_or_default(),
                    timestamp_header,
                    template,
                }))
            }
            // An API destination connection: API key (a header and its value) or basic
            // auth (user name and password); without either, `Authorization: Bearer`.
            SourceKind::AwsApiDestination if config.username.is_some() => {
                if config.header.is_some() {
                    err(
                        "header",
                        "set header (API key auth) or username (basic auth), not both".into(),
                    );
                }
                verify::Scheme::Basic {
                    username: config.username.clone().unwrap_or_default(),
                }
            }
            SourceKind::Token | SourceKind::AwsApiDestination => {
                match header_name("header", &config.header) {
                    Ok(header) => verify::Scheme::Token { header },
                    Err(e) => {
                        err(&e.0, e.1);
                        verify::Scheme::Token { header: None }
                    }
                }
            }
            SourceKind::Basic => {
                let username = config.username.clone().unwrap_or_default();
                if username.is_empty() || username.contains(':') {
                    err(
                        "username",
                        "kind basic needs a user name (without ':'); the password is the secret"
                            .into(),
                    );
                }
                verify::Scheme::Basic { username }
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Source {
            name: config.name.to_string(),
            kind,
            bus: config.bus.clone(),
            verifier: Verifier {
                scheme,
                secrets,
                tolerance: tolerance.as_secs(),
            },
            dedupe: config.dedupe.0,
            source: config.source.clone(),
            id_header,
            peer: config.peer.clone(),
        })
    }
}

/// Resolves a source's `secret`/`secrets` (`env:`, `file:`, literal), one entry per
/// configured secret (`None` for one that failed, with its error at its path `at...`).
pub fn resolve_secrets(
    config: &SourceConfig,
    at: &str,
    errors: &mut Errors,
) -> Vec<Option<Secret>> {
    let refs: Vec<(String, &SecretRef)> = match (&config.secret, config.secrets.as_slice()) {
        (Some(one), []) => vec![(format!("{at}.secret"), one)],
        (None, many) => many
            .iter()
            .enumerate()
            .map(|(j, s)| (format!("{at}.secrets[{j}]"), s))
            .collect(),
        (Some(_), _) => {
            errors.at(at, "set secret or secrets, not both");
            return Vec::new();
        }
    };
    if refs.is_empty() {
        errors.at(
            format!("{at}.secret"),
            format!(
                "kind {} needs a secret (or secrets: [...]){}",
                config.kind.as_str(),
                if config.kind == SourceKind::Basic {
                    ": the password"
                } else {
                    ""
                }
            ),
        );
    }
    refs.into_iter()
        .map(|(path, reference)| {
            reference
                .resolve()
                .map_err(|message| errors.at(path, message))
                .ok()
        })
        .collect()
}

/// Path of the `i`th resolved secret: `secret`, or `secrets[i]`.
pub fn secret_field(config: &SourceConfig, i: usize) -> String {
    if config.secret.is_some() {
        "secret".into()
    } else {
        format!("secrets[{i}]")
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::Plan;

    /// The errors of a config with one source (written as a YAML flow mapping).
    fn errors(source: &str) -> Vec<String> {
        let yaml = format!("buses: [{{name: b}}]\nsources: [{source}]\n");
        match Plan::parse(&yaml) {
            Ok(_) => vec![],
            Err(es) => es.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn hmac_timestamp_header_must_be_signed() {
        let got = errors(
            "{name: h, kind: hmac, bus: b, secret: k, header: x-sig, timestamp_header: x-ts, signed_content: '{body}'}",
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("sources[0].signed_content: ") && got[0].contains("{timestamp}"),
            "{got:?}"
        );
        // The default template with a timestamp header signs it.
        let ok = "{name: h, kind: hmac, bus: b, secret: k, header: x-sig, timestamp_header: x-ts}";
        assert_eq!(errors(ok), Vec::<String>::new());
    }

    #[test]
    fn secrets_never_in_debug_output() {
        let yaml = "buses: [{name: b}]\nsources: [{name: s, kind: github, bus: b, secrets: [hunter2-literal, other-secret]}]\n";
        let plan = Plan::parse(yaml).unwrap();
        let source = &plan.sources["s"];
        for debug in [
            format!("{source:?}"),
            format!("{source:#?}"),
            format!("{:?}", source.verifier),
        ] {
            assert!(
                !debug.contains("hunter2") && !debug.contains("other-secret"),
                "{debug}"
            );
            // Not the bytes either.
            assert!(!debug.contains("104, 117, 110"), "{debug}");
        }
    }

    #[test]
    fn dedupe_window_is_bounded() {
        for window in ["300000000y", "366d", "100000000000000h"] {
            let got = errors(&format!(
                "{{name: s, kind: github, bus: b, secret: k, dedupe: {window}}}"
            ));
            assert_eq!(got.len(), 1, "{window}: {got:?}");
            assert!(
                got[0].starts_with("sources[0].dedupe: ") && got[0].contains("365d"),
                "{window}: {got:?}"
            );
        }
        let ok = errors("{name: s, kind: github, bus: b, secret: k, dedupe: 365d}");
        assert_eq!(ok, Vec::<String>::new());
    }

    #[test]
    fn tolerance_is_at_least_a_second() {
        for tolerance in ["500ms", "999ms", "0s"] {
            let got = errors(&format!(
                "{{name: s, kind: stripe, bus: b, secret: k, tolerance: {tolerance}}}"
            ));
            assert_eq!(got.len(), 1, "{tolerance}: {got:?}");
            assert!(
                got[0].starts_with("sources[0].tolerance: ") && got[0].contains("1s"),
                "{tolerance}: {got:?}"
            );
        }
        let ok = errors("{name: s, kind: stripe, bus: b, secret: k, tolerance: 1s}");
        assert_eq!(ok, Vec::<String>::new());
    }

    #[test]
    fn standard_webhooks_secret_errors_name_the_right_index() {
        let got = errors(
            r#"{name: s, kind: standard-webhooks, bus: b, secrets: ["env:SLUICE_TEST_UNSET_SECRET_6", "whsec_!!", "whsec_c2VjcmV0"]}"#,
        );
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("sources[0].secrets[0]: "), "{got:?}");
        assert!(
            got[1].starts_with("sources[0].secrets[1]: ") && got[1].contains("whsec_"),
            "{got:?}"
        );
    }
}

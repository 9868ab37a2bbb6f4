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

mod api_destination;
mod basic;
pub mod envelope;
mod hmac;
mod normalize;
mod token;
mod twilio;
pub mod verify;

use std::time::Duration;

use actix_web::http::header::HeaderName;
use serde::Deserialize;

use crate::config::value::{check_kind_fields, fields_of};
use crate::config::{Errors, Secret, SecretRef, SourceConfig, SourceKind};

pub use api_destination::ApiDestinationConfig;
pub use basic::BasicConfig;
pub use hmac::{HmacAlgorithm, HmacConfig, SignatureEncoding};
pub use normalize::{Normalized, Outcome};
pub use token::TokenConfig;
pub use twilio::TwilioConfig;
pub use verify::{Rejection, Request, Verifier};

/// Default tolerance of timestamped schemes (Stripe's and Slack's libraries use 5 min).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

pub use crate::config::value::MAX_DEDUPE;

/// The kind of a source and its own fields: one arm per kind, the config struct and its
/// build in the kind's module. Adding a kind: a module with its config and `build`
/// (returning its [`verify::Scheme`]), an arm here, in [`SourceKind`], in
/// [`kind_fields`], and its normalisation in `normalize.rs` (docs/architecture.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SourceKindConfig {
    Github(NoOptions),
    Stripe(NoOptions),
    Slack(NoOptions),
    Shopify(NoOptions),
    StandardWebhooks(NoOptions),
    Gitlab(NoOptions),
    Twilio(TwilioConfig),
    Hmac(HmacConfig),
    Token(TokenConfig),
    Basic(BasicConfig),
    /// EventBridge API destinations: the event envelope, API key or basic auth.
    AwsApiDestination(ApiDestinationConfig),
}

/// The fields of a provider kind whose scheme has no options (GitHub, Stripe, ...).
#[derive(Debug, Clone, Deserialize)]
pub struct NoOptions {}

impl SourceKindConfig {
    pub fn kind(&self) -> SourceKind {
        match self {
            SourceKindConfig::Github(_) => SourceKind::Github,
            SourceKindConfig::Stripe(_) => SourceKind::Stripe,
            SourceKindConfig::Slack(_) => SourceKind::Slack,
            SourceKindConfig::Shopify(_) => SourceKind::Shopify,
            SourceKindConfig::StandardWebhooks(_) => SourceKind::StandardWebhooks,
            SourceKindConfig::Gitlab(_) => SourceKind::Gitlab,
            SourceKindConfig::Twilio(_) => SourceKind::Twilio,
            SourceKindConfig::Hmac(_) => SourceKind::Hmac,
            SourceKindConfig::Token(_) => SourceKind::Token,
            SourceKindConfig::Basic(_) => SourceKind::Basic,
            SourceKindConfig::AwsApiDestination(_) => SourceKind::AwsApiDestination,
        }
    }

    /// Whether the scheme signs a timestamp (and so has a tolerance window).
    fn timestamped(&self) -> bool {
        match self {
            SourceKindConfig::Stripe(_)
            | SourceKindConfig::Slack(_)
            | SourceKindConfig::StandardWebhooks(_) => true,
            SourceKindConfig::Hmac(c) => c.timestamp_header.is_some(),
            _ => false,
        }
    }

    /// The header carrying a delivery id, for the generic kinds.
    fn id_header(&self) -> Option<&String> {
        match self {
            SourceKindConfig::Hmac(c) => c.id_header.as_ref(),
            SourceKindConfig::Token(c) => c.id_header.as_ref(),
            SourceKindConfig::Basic(c) => c.id_header.as_ref(),
            _ => None,
        }
    }

    /// Checks the kind's own fields and builds its verification scheme.
    fn build(&self, at: &str, errors: &mut Errors) -> verify::Scheme {
        match self {
            SourceKindConfig::Github(_) => verify::Scheme::Github,
            SourceKindConfig::Stripe(_) => verify::Scheme::Stripe,
            SourceKindConfig::Slack(_) => verify::Scheme::Slack,
            SourceKindConfig::Shopify(_) => verify::Scheme::Shopify,
            SourceKindConfig::StandardWebhooks(_) => verify::Scheme::StandardWebhooks,
            SourceKindConfig::Gitlab(_) => verify::Scheme::Gitlab,
            SourceKindConfig::Twilio(c) => c.build(at, errors),
            SourceKindConfig::Hmac(c) => c.build(at, errors),
            SourceKindConfig::Token(c) => c.build(at, errors),
            SourceKindConfig::Basic(c) => c.build(at, errors),
            SourceKindConfig::AwsApiDestination(c) => c.build(at, errors),
        }
    }
}

/// Each kind's own fields, kinds in the order error messages name them.
fn kind_fields() -> [(SourceKind, &'static [&'static str]); 5] {
    [
        (SourceKind::Twilio, fields_of::<TwilioConfig>()),
        (SourceKind::Hmac, fields_of::<HmacConfig>()),
        (SourceKind::Token, fields_of::<TokenConfig>()),
        (SourceKind::Basic, fields_of::<BasicConfig>()),
        (
            SourceKind::AwsApiDestination,
            fields_of::<ApiDestinationConfig>(),
        ),
    ]
}

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

/// A header name option (`field` of the source at `at`), checked.
pub(crate) fn header_name(
    value: Option<&String>,
    at: &str,
    field: &str,
    errors: &mut Errors,
) -> Option<HeaderName> {
    let value = value?;
    HeaderName::from_bytes(value.as_bytes())
        .map_err(|_| {
            errors.at(
                format!("{at}.{field}"),
                format!("{value:?} is not a header name"),
            )
        })
        .ok()
}

impl Source {
    /// Compiles the source at path `at` with its resolved secrets (from
    /// [`resolve_secrets`], one per configured secret, `None` for one that failed to
    /// resolve); every error goes to `errors`.
    pub fn compile(
        config: &SourceConfig,
        resolved_secrets: &[Option<Secret>],
        at: &str,
        errors: &mut Errors,
    ) -> Option<Source> {
        let before = errors.len();
        let kind = config.kind.kind();
        check_kind_fields(
            kind,
            &kind_fields(),
            &config.other_fields,
            at,
            errors,
            |owners| {
                let names: Vec<&str> = owners.iter().map(|k| k.as_str()).collect();
                format!(
                    "applies only to kind {}, not {}",
                    names.join(" or "),
                    kind.as_str()
                )
            },
            |field| {
                format!(
                    "unknown field `{field}` of a {} source (see docs/configuration.md)",
                    kind.as_str()
                )
            },
        );
        if config.tolerance.is_some() && !config.kind.timestamped() {
            errors.at(
                format!("{at}.tolerance"),
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
            errors.at(
                format!("{at}.tolerance"),
                "must be at least 1s (signed timestamps are whole seconds)",
            );
        }
        if let Err(m) = config.dedupe.check() {
            errors.at(format!("{at}.dedupe"), m);
        }
        if let Some(source) = &config.source {
            if source.is_empty() || source.contains(char::is_whitespace) {
                errors.at(
                    format!("{at}.source"),
                    "must be a non-empty URI reference without spaces",
                );
            }
        }
        let id_header = header_name(config.kind.id_header(), at, "id_header", errors);
        let scheme = config.kind.build(at, errors);

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
                Err(message) => errors.at(format!("{at}.{}", secret_field(config, i)), message),
            }
        }
        if errors.len() > before {
            return None;
        }
        let peer = match &config.kind {
            SourceKindConfig::AwsApiDestination(c) => c.peer.clone(),
            _ => None,
        };
        Some(Source {
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
            peer,
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
                config.kind.kind().as_str(),
                if config.kind.kind() == SourceKind::Basic {
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
    fn fields_belong_to_their_kinds() {
        let got = errors(
            "{name: s, kind: github, bus: b, secret: k, header: x-sig, username: u, colour: red}",
        );
        assert_eq!(
            got,
            [
                "sources[0].header: applies only to kind hmac or token or aws-api-destination, not github",
                "sources[0].username: applies only to kind basic or aws-api-destination, not github",
                "sources[0].colour: unknown field `colour` of a github source (see docs/configuration.md)",
            ],
        );
        // A kind's own field of the wrong type fails parsing, naming the value.
        let got = errors("{name: s, kind: hmac, bus: b, secret: k, header: x-sig, algorithm: md5}");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("line 2: sources[0]: unknown variant `md5`"),
            "{got:?}"
        );
        // A kind that does not exist is named at `kind`.
        let got = errors("{name: s, kind: gitea, bus: b, secret: k}");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("line 2: sources[0].kind: unknown variant `gitea`"),
            "{got:?}"
        );
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

//! Webhook signature checks, one per provider scheme, on the raw body bytes.
//!
//! Every comparison of a signature, token or password is constant-time (`hmac`'s
//! `verify_slice`, `subtle`'s `ct_eq` over SHA-256 digests so lengths do not leak either).
//! A request passes when any configured secret verifies it (rotation). A [`Rejection`]
//! says why, for the log only: the HTTP answer never does.

use std::fmt;

use actix_web::http::header::{HeaderMap, HeaderName};
use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::hmac::{HmacAlgorithm, SignatureEncoding};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The parts of a request a verifier looks at.
pub struct Request<'a> {
    pub headers: &'a HeaderMap,
    /// The raw query string (without `?`).
    pub query: &'a str,
    pub body: &'a [u8],
    /// Current Unix time in seconds.
    pub now: i64,
}

impl Request<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn require(&self, name: &str) -> Result<&str, Rejection> {
        self.header(name).ok_or(Rejection::MissingHeader)
    }
}

/// Why a request was not accepted; logged, never answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    MissingHeader,
    Malformed,
    Expired,
    Mismatch,
    /// A body the signature does not cover (Twilio: neither form parameters nor
    /// `bodySHA256`).
    UnsignedBody,
}

impl Rejection {
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::MissingHeader => "a required header is missing",
            Rejection::Malformed => "signature or timestamp header is malformed",
            Rejection::Expired => "timestamp outside the tolerance window (possible replay)",
            Rejection::Mismatch => "no secret verifies the signature",
            Rejection::UnsignedBody => "the body is not covered by the signature",
        }
    }
}

/// A generic HMAC scheme (`kind: hmac`).
#[derive(Debug, Clone)]
pub struct HmacScheme {
    pub header: HeaderName,
    pub algorithm: HmacAlgorithm,
    pub encoding: SignatureEncoding,
    pub prefix: String,
    pub timestamp_header: Option<HeaderName>,
    /// The signed content split at `{body}` and `{timestamp}`.
    pub template: Vec<Part>,
}

/// A piece of a signed-content template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Body,
    Timestamp,
}

/// Splits a `signed_content` template into parts; unknown `{...}` is an error.
pub fn parse_template(template: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or("unclosed {")?;
        if open > 0 {
            parts.push(Part::Literal(rest[..open].to_string()));
        }
        parts.push(match &rest[open + 1..close] {
            "body" => Part::Body,
            "timestamp" => Part::Timestamp,
            other => {
                return Err(format!(
                    "{{{other}}} is not a placeholder; use {{body}} and {{timestamp}}"
                ))
            }
        });
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_string()));
    }
    if parts.iter().filter(|p| **p == Part::Body).count() != 1 {
        return Err("must contain {body} exactly once".into());
    }
    Ok(parts)
}

/// How requests of one source are verified.
#[derive(Debug, Clone)]
pub enum Scheme {
    Github,
    Stripe,
    Slack,
    Shopify,
    StandardWebhooks,
    Gitlab,
    /// `url` is the public URL Twilio calls, without query string.
    Twilio {
        url: String,
    },
    Hmac(Box<HmacScheme>),
    /// `header` holds the token verbatim; by default `Authorization: Bearer <token>`.
    Token {
        header: Option<HeaderName>,
    },
    Basic {
        username: String,
    },
}

/// A scheme with its secrets (already decoded, e.g. `whsec_` base64 for Standard
/// Webhooks) and its timestamp tolerance. `Debug` shows how many secrets, never them.
#[derive(Clone)]
pub struct Verifier {
    pub scheme: Scheme,
    pub secrets: Vec<Vec<u8>>,
    /// Seconds a signed timestamp may differ from now, either way.
    pub tolerance: u64,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("scheme", &self.scheme)
            .field("secrets", &format_args!("[***; {}]", self.secrets.len()))
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

/// Whether a `Content-Type` is `application/x-www-form-urlencoded` (any case, any
/// parameters). Shared by verification and normalisation, so a body is signed as form
/// parameters exactly when it is read as them.
pub(crate) fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

impl Verifier {
    pub fn verify(&self, req: &Request) -> Result<(), Rejection> {
        use HmacAlgorithm::*;
        match &self.scheme {
            Scheme::Github => {
                let sig = req.require("x-hub-signature-256")?;
                let tag = sig
                    .strip_prefix("sha256=")
                    .and_then(|h| hex::decode(h).ok())
                    .ok_or(Rejection::Malformed)?;
                self.any_secret(|key| hmac_verify(Sha256, key, &[req.body], &tag))
            }
            Scheme::Stripe => {
                let header = req.require("stripe-signature")?;
                let mut t = None;
                let mut candidates = Vec::new();
                for item in header.split(',') {
                    match item.trim().split_once('=') {
                        Some(("t", v)) => t = Some(v),
                        // Other schemes (v0 is the test-mode legacy one) are ignored, as
                        // Stripe's libraries do.
                        Some(("v1", v)) => candidates.extend(hex::decode(v).ok()),
                        _ => {}
                    }
                }
                let t = t.ok_or(Rejection::Malformed)?;
                self.fresh(t, req.now)?;
                if candidates.is_empty() {
                    return Err(Rejection::Malformed);
                }
                let parts: [&[u8]; 3] = [t.as_bytes(), b".", req.body];
                self.any_secret(|key| {
                    candidates
                        .iter()
                        .any(|tag| hmac_verify(Sha256, key, &parts, tag))
                })
            }
            Scheme::Slack => {
                let ts = req.require("x-slack-request-timestamp")?;
                let sig = req.require("x-slack-signature")?;
                let tag = sig
                    .strip_prefix("v0=")
                    .and_then(|h| hex::decode(h).ok())
                    .ok_or(Rejection::Malformed)?;
                self.fresh(ts, req.now)?;
                let parts: [&[u8]; 4] = [b"v0:", ts.as_bytes(), b":", req.body];
                self.any_secret(|key| hmac_verify(Sha256, key, &parts, &tag))
            }
            Scheme::Shopify => {
                let sig = req.require("x-shopify-hmac-sha256")?;
                let tag = B64.decode(sig).map_err(|_| Rejection::Malformed)?;
                self.any_secret(|key| hmac_verify(Sha256, key, &[req.body], &tag))
            }
            Scheme::StandardWebhooks => {
                // The Svix names are the same scheme under another prefix.
                let (id, ts, sigs) = match req.header("webhook-id") {
                    Some(id) => (
                        id,
                        req.require("webhook-timestamp")?,
                        req.require("webhook-signature")?,
                    ),
                    None => (
                        req.require("svix-id")?,
                        req.require("svix-timestamp")?,
                        req.require("svix-signature")?,
                    ),
                };
                self.fresh(ts, req.now)?;
                // Space-delimited `version,signature` pairs; only v1 (HMAC-SHA256) is
                // ours, v1a (ed25519) and unknown versions are skipped.
                let tags: Vec<Vec<u8>> = sigs
                    .split(' ')
                    .filter_map(|s| s.strip_prefix("v1,"))
                    .filter_map(|b| B64.decode(b).ok())
                    .collect();
                if tags.is_empty() {
                    return Err(Rejection::Malformed);
                }
                let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", req.body];
                self.any_secret(|key| tags.iter().any(|t| hmac_verify(Sha256, key, &parts, t)))
            }
            Scheme::Gitlab => {
                let token = req.require("x-gitlab-token")?;
                self.any_secret(|key| digest_eq(key, token.as_bytes()))
            }
            Scheme::Twilio { url } => {
                let sig = req.require("x-twilio-signature")?;
                let tag = B64.decode(sig).map_err(|_| Rejection::Malformed)?;
                let signed = twilio_content(url, req)?;
                self.any_secret(|key| hmac_verify(Sha1, key, &[signed.as_bytes()], &tag))
            }
            Scheme::Hmac(h) => {
                let sig = req
                    .header(h.header.as_str())
                    .ok_or(Rejection::MissingHeader)?;
                let encoded = sig.trim().strip_prefix(h.prefix.as_str());
                let tag = encoded
                    .and_then(|e| match h.encoding {
                        SignatureEncoding::Hex => hex::decode(e).ok(),
                        SignatureEncoding::Base64 => B64.decode(e).ok(),
                    })
                    .ok_or(Rejection::Malformed)?;
                let ts = match &h.timestamp_header {
                    Some(name) => {
                        let ts = req.header(name.as_str()).ok_or(Rejection::MissingHeader)?;
                        self.fresh(ts, req.now)?;
                        ts
                    }
                    None => "",
                };
                let parts: Vec<&[u8]> = h
                    .template
                    .iter()
                    .map(|p| match p {
                        Part::Literal(s) => s.as_bytes(),
                        Part::Body => req.body,
                        Part::Timestamp => ts.as_bytes(),
                    })
                    .collect();
                self.any_secret(|key| hmac_verify(h.algorithm, key, &parts, &tag))
            }
            Scheme::Token { header } => {
                let token = match header {
                    Some(name) => req.header(name.as_str()).ok_or(Rejection::MissingHeader)?,
                    None => {
                        let auth = req.require("authorization")?;
                        strip_scheme(auth, "Bearer").ok_or(Rejection::Malformed)?
                    }
                };
                self.any_secret(|key| digest_eq(key, token.as_bytes()))
            }
            Scheme::Basic { username } => {
                let auth = req.require("authorization")?;
                let decoded = strip_scheme(auth, "Basic")
                    .and_then(|c| B64.decode(c).ok())
                    .ok_or(Rejection::Malformed)?;
                let colon = decoded
                    .iter()
                    .position(|&b| b == b':')
                    .ok_or(Rejection::Malformed)?;
                let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
                // Both halves are always compared, so timing says nothing about which failed.
                let user_ok = digest_eq(username.as_bytes(), user);
                let password_ok = self.any_secret(|key| digest_eq(key, password)).is_ok();
                if user_ok & password_ok {
                    Ok(())
                } else {
                    Err(Rejection::Mismatch)
                }
            }
        }
    }

    /// Every secret is tried (no early exit), so timing does not reveal which matched.
    fn any_secret(&self, mut check: impl FnMut(&[u8]) -> bool) -> Result<(), Rejection> {
        let mut ok = false;
        for key in &self.secrets {
            ok |= check(key);
        }
        if ok {
            Ok(())
        } else {
            Err(Rejection::Mismatch)
        }
    }

    /// A Unix-seconds timestamp within the tolerance of now, in either direction.
    fn fresh(&self, ts: &str, now: i64) -> Result<(), Rejection> {
        let ts: i64 = ts.trim().parse().map_err(|_| Rejection::Malformed)?;
        if ts.abs_diff(now) > self.tolerance {
            return Err(Rejection::Expired);
        }
        Ok(())
    }
}

/// `Authorization: <scheme> <credentials>`, the scheme matched case-insensitively.
fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = header.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// Constant-time equality that does not leak the lengths either.
fn digest_eq(a: &[u8], b: &[u8]) -> bool {
    Sha256::digest(a).ct_eq(&Sha256::digest(b)).into()
}

fn hmac_verify(algorithm: HmacAlgorithm, key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    fn check<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
        for part in parts {
            mac.update(part);
        }
        mac.verify_slice(tag).is_ok()
    }
    match algorithm {
        HmacAlgorithm::Sha1 => check::<hmac::Hmac<sha1::Sha1>>(key, parts, tag),
        HmacAlgorithm::Sha256 => check::<hmac::Hmac<Sha256>>(key, parts, tag),
        HmacAlgorithm::Sha512 => check::<hmac::Hmac<sha2::Sha512>>(key, parts, tag),
    }
}

/// What Twilio signs: the full URL it called, then for form bodies every parameter as
/// `name` + `value`, sorted. A JSON body is instead covered by the `bodySHA256` query
/// parameter (hex SHA-256 of the body), which is itself part of the signed URL. Any
/// other non-empty body would be unsigned yet become the event data: refused.
fn twilio_content(url: &str, req: &Request) -> Result<String, Rejection> {
    let mut signed = url.to_string();
    if !req.query.is_empty() {
        signed.push('?');
        signed.push_str(req.query);
    }
    let body_sha = url::form_urlencoded::parse(req.query.as_bytes())
        .find(|(k, _)| k == "bodySHA256")
        .map(|(_, v)| v.into_owned());
    if let Some(expected) = body_sha {
        let expected = hex::decode(expected).map_err(|_| Rejection::Malformed)?;
        if !bool::from(Sha256::digest(req.body).as_slice().ct_eq(&expected)) {
            return Err(Rejection::Mismatch);
        }
        return Ok(signed);
    }
    if is_form(req.header("content-type")) {
        let mut params: Vec<(String, String)> = url::form_urlencoded::parse(req.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        params.sort();
        for (k, v) in params {
            signed.push_str(&k);
            signed.push_str(&v);
        }
    } else if !req.body.is_empty() {
        return Err(Rejection::UnsignedBody);
    }
    Ok(signed)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    pub(crate) fn sign(algorithm: HmacAlgorithm, key: &[u8], content: &[u8]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(key: &[u8], content: &[u8]) -> Vec<u8> {
            let mut mac = <M as KeyInit>::new_from_slice(key).unwrap();
            mac.update(content);
            mac.finalize().into_bytes().to_vec()
        }
        match algorithm {
            HmacAlgorithm::Sha1 => run::<hmac::Hmac<sha1::Sha1>>(key, content),
            HmacAlgorithm::Sha256 => run::<hmac::Hmac<Sha256>>(key, content),
            HmacAlgorithm::Sha512 => run::<hmac::Hmac<sha2::Sha512>>(key, content),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            map.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn verifier(scheme: Scheme, secrets: &[&[u8]]) -> Verifier {
        Verifier {
            scheme,
            secrets: secrets.iter().map(|s| s.to_vec()).collect(),
            tolerance: 300,
        }
    }

    fn check(
        v: &Verifier,
        h: &[(&str, &str)],
        query: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), Rejection> {
        let headers = headers(h);
        v.verify(&Request {
            headers: &headers,
            query,
            body,
            now,
        })
    }

    #[test]
    fn github_documented_example() {
        // docs.github.com, "Validating webhook deliveries": secret, payload, signature.
        let v = verifier(Scheme::Github, &[b"It's a Secret to Everybody"]);
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let ok = check(&v, &[("x-hub-signature-256", sig)], "", b"Hello, World!", 0);
        assert_eq!(ok, Ok(()));
        let tampered = check(&v, &[("x-hub-signature-256", sig)], "", b"Hello, World?", 0);
        assert_eq!(tampered, Err(Rejection::Mismatch));
        assert_eq!(
            check(&v, &[], "", b"Hello, World!", 0),
            Err(Rejection::MissingHeader)
        );
        let bad = check(&v, &[("x-hub-signature-256", "sha1=00")], "", b"x", 0);
        assert_eq!(bad, Err(Rejection::Malformed));
    }

    #[test]
    fn slack_documented_example() {
        // api.slack.com/authentication/verifying-requests-from-slack, worked example.
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let v = verifier(
            Scheme::Slack,
            &[b"wrong", b"8f742231b10e8888abcd99yyyzzz85a5"],
        );
        let h = [
            ("x-slack-request-timestamp", "1531420618"),
            (
                "x-slack-signature",
                "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            ),
        ];
        assert_eq!(check(&v, &h, "", body, 1531420618 + 10), Ok(()));
        assert_eq!(
            check(&v, &h, "", body, 1531420618 + 301),
            Err(Rejection::Expired)
        );
        assert_eq!(
            check(&v, &h[1..], "", body, 1531420618),
            Err(Rejection::MissingHeader)
        );
    }

    #[test]
    fn standard_webhooks_published_vector() {
        // The test vector of the Standard Webhooks reference libraries (and Svix's).
        let secret = B64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let v = verifier(Scheme::StandardWebhooks, &[&secret]);
        let body = br#"{"test": 2432232314}"#;
        let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let now = 1614265330;
        for prefix in ["webhook", "svix"] {
            let h = [
                (format!("{prefix}-id"), "msg_p5jXN8AQM9LWM0D4loKWxJek"),
                (format!("{prefix}-timestamp"), "1614265330"),
                (format!("{prefix}-signature"), sig),
            ];
            let h: Vec<(&str, &str)> = h.iter().map(|(n, v)| (n.as_str(), *v)).collect();
            assert_eq!(check(&v, &h, "", body, now), Ok(()), "{prefix}");
            assert_eq!(check(&v, &h, "", b"{}", now), Err(Rejection::Mismatch));
            assert_eq!(check(&v, &h, "", body, now - 400), Err(Rejection::Expired));
        }
        // Several signatures: any valid one is enough; v1a and unknown versions skipped.
        let h = [
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            (
                "webhook-signature",
                "v1a,AAAA v1,Zm9v v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ];
        assert_eq!(check(&v, &h, "", body, now), Ok(()));
    }

    #[test]
    fn stripe_signatures_timestamps_and_rotation() {
        let body = br#"{"id":"evt_1","type":"invoice.paid"}"#;
        let t = 1_700_000_000i64;
        let content = [t.to_string().as_bytes(), b".", body].concat();
        let good = hex::encode(sign(HmacAlgorithm::Sha256, b"whsec_new", &content));
        let old = hex::encode(sign(HmacAlgorithm::Sha256, b"whsec_old", &content));
        let header = format!("t={t},v1={old},v1={good},v0=abc");
        let v = verifier(Scheme::Stripe, &[b"whsec_new"]);
        assert_eq!(
            check(&v, &[("stripe-signature", &header)], "", body, t + 299),
            Ok(())
        );
        assert_eq!(
            check(&v, &[("stripe-signature", &header)], "", body, t + 301),
            Err(Rejection::Expired)
        );
        let only_old = format!("t={t},v1={old}");
        assert_eq!(
            check(&v, &[("stripe-signature", &only_old)], "", body, t),
            Err(Rejection::Mismatch)
        );
        let rotated = verifier(Scheme::Stripe, &[b"whsec_new", b"whsec_old"]);
        assert_eq!(
            check(&rotated, &[("stripe-signature", &only_old)], "", body, t),
            Ok(())
        );
        assert_eq!(
            check(
                &v,
                &[("stripe-signature", &format!("v1={good}"))],
                "",
                body,
                t
            ),
            Err(Rejection::Malformed)
        );
    }

    #[test]
    fn shopify_base64_signature() {
        let body = br#"{"id":820982911946154508}"#;
        let sig = B64.encode(sign(HmacAlgorithm::Sha256, b"shpss", body));
        let v = verifier(Scheme::Shopify, &[b"shpss"]);
        assert_eq!(
            check(&v, &[("x-shopify-hmac-sha256", &sig)], "", body, 0),
            Ok(())
        );
        let hex_sig = hex::encode(sign(HmacAlgorithm::Sha256, b"shpss", body));
        assert_ne!(
            check(&v, &[("x-shopify-hmac-sha256", &hex_sig)], "", body, 0),
            Ok(())
        );
    }

    #[test]
    fn gitlab_token_token_and_basic() {
        let v = verifier(Scheme::Gitlab, &[b"glpat"]);
        assert_eq!(
            check(&v, &[("x-gitlab-token", "glpat")], "", b"", 0),
            Ok(())
        );
        assert_eq!(
            check(&v, &[("x-gitlab-token", "glpa")], "", b"", 0),
            Err(Rejection::Mismatch)
        );

        let v = verifier(Scheme::Token { header: None }, &[b"t0k"]);
        assert_eq!(
            check(&v, &[("authorization", "bearer t0k")], "", b"", 0),
            Ok(())
        );
        assert_eq!(
            check(&v, &[("authorization", "Basic t0k")], "", b"", 0),
            Err(Rejection::Malformed)
        );
        let v = verifier(
            Scheme::Token {
                header: Some(HeaderName::from_static("x-api-key")),
            },
            &[b"t0k"],
        );
        assert_eq!(check(&v, &[("x-api-key", "t0k")], "", b"", 0), Ok(()));

        let v = verifier(
            Scheme::Basic {
                username: "hooks".into(),
            },
            &[b"pa:ss"],
        );
        let auth = |c: &str| format!("Basic {}", B64.encode(c));
        assert_eq!(
            check(&v, &[("authorization", &auth("hooks:pa:ss"))], "", b"", 0),
            Ok(())
        );
        assert_eq!(
            check(&v, &[("authorization", &auth("other:pa:ss"))], "", b"", 0),
            Err(Rejection::Mismatch)
        );
    }

    #[test]
    fn twilio_documented_example_and_json_bodies() {
        // twilio.com/docs/usage/security: the auth token, URL and parameters of the
        // documented example.
        let v = verifier(
            Scheme::Twilio {
                url: "https://mycompany.com/myapp.php".into(),
            },
            &[b"12345"],
        );
        let body = b"CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
        let form = ("content-type", "application/x-www-form-urlencoded");
        let expected = B64.encode(sign(
            HmacAlgorithm::Sha1,
            b"12345",
            b"https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+12349013030Digits1234From+12349013030To+18005551212",
        ));
        assert_eq!(expected, TWILIO_DOCUMENTED_SIGNATURE);
        let h = [form, ("x-twilio-signature", TWILIO_DOCUMENTED_SIGNATURE)];
        assert_eq!(check(&v, &h, "foo=1&bar=2", body, 0), Ok(()));
        assert_eq!(
            check(&v, &h, "foo=1&bar=3", body, 0),
            Err(Rejection::Mismatch)
        );

        let json = br#"{"CallSid":"CA1"}"#;
        let sha = hex::encode(Sha256::digest(json));
        let query = format!("bodySHA256={sha}");
        let url = format!("https://mycompany.com/myapp.php?{query}");
        let sig = B64.encode(sign(HmacAlgorithm::Sha1, b"12345", url.as_bytes()));
        let h = [
            ("content-type", "application/json"),
            ("x-twilio-signature", sig.as_str()),
        ];
        assert_eq!(check(&v, &h, &query, json, 0), Ok(()));
        assert_eq!(
            check(&v, &h, &query, br#"{"CallSid":"CA2"}"#, 0),
            Err(Rejection::Mismatch)
        );
    }

    #[test]
    fn twilio_body_must_be_signed() {
        // Signed over the URL only: no form parameters, no bodySHA256.
        let v = verifier(
            Scheme::Twilio {
                url: "https://mycompany.com/myapp.php".into(),
            },
            &[b"12345"],
        );
        let sig = B64.encode(sign(
            HmacAlgorithm::Sha1,
            b"12345",
            b"https://mycompany.com/myapp.php?x=1",
        ));
        let with = |ct: &'static str| [("content-type", ct), ("x-twilio-signature", sig.as_str())];
        // An empty body is all the signature says, whatever its type.
        for ct in ["text/plain", "application/x-www-form-urlencoded"] {
            assert_eq!(check(&v, &with(ct), "x=1", b"", 0), Ok(()), "{ct}");
        }
        // A body the signature does not cover is refused.
        for ct in ["text/plain", "application/json", "application/octet-stream"] {
            assert_eq!(
                check(&v, &with(ct), "x=1", b"injected=1", 0),
                Err(Rejection::UnsignedBody),
                "{ct}"
            );
        }
        let sig_only = [("x-twilio-signature", sig.as_str())];
        assert_eq!(
            check(&v, &sig_only, "x=1", b"injected", 0),
            Err(Rejection::UnsignedBody)
        );
        // Form content types are recognised whatever their case and parameters: the
        // parameters are then signed, and these were not.
        for ct in [
            "APPLICATION/X-WWW-FORM-URLENCODED",
            "Application/x-www-form-urlencoded; charset=UTF-8",
        ] {
            assert_eq!(
                check(&v, &with(ct), "x=1", b"injected=1", 0),
                Err(Rejection::Mismatch),
                "{ct}"
            );
        }
        assert!(is_form(Some(
            " application/X-WWW-form-urlencoded ;charset=utf-8"
        )));
        assert!(!is_form(Some("application/x-www-form-urlencodedx")));
        assert!(!is_form(Some("text/plain")));
        assert!(!is_form(None));
    }

    const TWILIO_DOCUMENTED_SIGNATURE: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";

    #[test]
    fn generic_hmac_with_prefix_timestamp_and_template() {
        let scheme = HmacScheme {
            header: HeaderName::from_static("x-signature"),
            algorithm: HmacAlgorithm::Sha512,
            encoding: SignatureEncoding::Base64,
            prefix: "sha512=".into(),
            timestamp_header: Some(HeaderName::from_static("x-timestamp")),
            template: parse_template("{timestamp}:{body}").unwrap(),
        };
        let v = verifier(Scheme::Hmac(Box::new(scheme)), &[b"k"]);
        let sig = format!(
            "sha512={}",
            B64.encode(sign(HmacAlgorithm::Sha512, b"k", b"1000:{}"))
        );
        let h = [("x-signature", sig.as_str()), ("x-timestamp", "1000")];
        assert_eq!(check(&v, &h, "", b"{}", 1100), Ok(()));
        assert_eq!(check(&v, &h, "", b"{}", 2000), Err(Rejection::Expired));
        assert_eq!(
            check(&v, &h[..1], "", b"{}", 1000),
            Err(Rejection::MissingHeader)
        );
        assert_eq!(check(&v, &h, "", b"{ }", 1000), Err(Rejection::Mismatch));
    }

    #[test]
    fn templates() {
        assert_eq!(
            parse_template("v0:{timestamp}:{body}").unwrap(),
            vec![
                Part::Literal("v0:".into()),
                Part::Timestamp,
                Part::Literal(":".into()),
                Part::Body
            ]
        );
        assert!(parse_template("{timestamp}").is_err());
        assert!(parse_template("{body}{body}").is_err());
        assert!(parse_template("{id}.{body}").is_err());
        assert!(parse_template("{body").is_err());
    }
}

//! The `acs:` request signature of Alibaba Cloud's EventBridge SDKs
//! (`authorization: acs:{AccessKeyId}:{signature}`, base64 HMAC-SHA1 over the string
//! to sign below): verified on ingest and made by the `alibaba-eventbridge` target.
//!
//! String to sign, as the SDKs (`EventBridgeUtilClient.get_string_to_sign`) build it:
//! `METHOD\nCONTENT-MD5\nCONTENT-TYPE\nDATE\n`, then every header whose name starts
//! with `x-acs`, sorted by name, as `name:value\n`, then the path, with `?k=v&...` (sorted
//! by name) when there is a query string.

use std::collections::HashMap;

use actix_web::http::header::HeaderMap;
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{KeyInit, Mac};
use md5::Digest;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Longest accepted `x-acs-signature-nonce` (the SDKs send a 32- or 36-character id).
const MAX_NONCE_LEN: usize = 128;

/// A verified request: the AccessKey id that signed it and its signed nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub key_id: String,
    pub nonce: String,
}

/// Redis key recording a used signature nonce of an AccessKey (see
/// [`AcsVerifier::nonce_ttl`]).
pub fn nonce_key(key_id: &str, nonce: &str) -> String {
    format!("sluice:acs-nonce:{key_id}:{nonce}")
}

/// base64(HMAC-SHA1(secret, string to sign)): the signature the SDKs send.
pub fn sign(secret: &[u8], string_to_sign: &str) -> String {
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(string_to_sign.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// Verifies `acs:` signatures against configured AccessKey pairs.
#[derive(Clone)]
pub struct AcsVerifier {
    pub(super) keys: HashMap<String, Vec<u8>>,
    pub(super) max_skew: TimeDelta,
    pub(super) require_content_md5: bool,
}

impl std::fmt::Debug for AcsVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcsVerifier")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// An error answer: HTTP status, `code` and `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl RequestError {
    pub(crate) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        RequestError {
            status,
            code,
            message: message.into(),
        }
    }
}

/// The parts of a request the signature covers.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub now: DateTime<Utc>,
}

/// The string to sign of a request (see the module documentation).
pub fn string_to_sign(req: &SignedRequest<'_>) -> String {
    let header = |name: &str| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let mut acs: Vec<(String, String)> = Vec::new();
    for name in req.headers.keys() {
        if name.as_str().starts_with("x-acs") {
            let values: Vec<String> = req
                .headers
                .get_all(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            acs.push((name.as_str().to_string(), values.join(",")));
        }
    }
    string_to_sign_of(
        req.method,
        [
            header("content-md5"),
            header("content-type"),
            header("date"),
        ],
        acs,
        req.path,
        req.query,
    )
}

/// The string to sign from its parts: `[content-md5, content-type, date]`, the
/// `x-acs*` headers (lower-case names, any order), path and raw query string. Shared by
/// the verifier and the `alibaba-eventbridge` target, so both sign alike.
pub fn string_to_sign_of(
    method: &str,
    [md5, content_type, date]: [&str; 3],
    mut acs: Vec<(String, String)>,
    path: &str,
    query: &str,
) -> String {
    let mut out = format!("{method}\n{md5}\n{content_type}\n{date}\n");
    acs.sort();
    for (name, value) in acs {
        out.push_str(&name);
        out.push(':');
        out.push_str(&value);
        out.push('\n');
    }
    out.push_str(path);
    let mut query: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if !query.is_empty() {
        query.sort();
        let pairs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

impl AcsVerifier {
    /// How long a used nonce is remembered: twice the `date` window, so a request is
    /// refused by its date before its nonce is forgotten.
    pub fn nonce_ttl(&self) -> std::time::Duration {
        (self.max_skew * 2).to_std().unwrap_or_default()
    }

    /// Verifies a request; returns the AccessKey id that signed it and its nonce (which
    /// the caller must record, refusing one already used: [`nonce_key`]).
    pub fn verify(&self, req: &SignedRequest<'_>) -> Result<Verified, RequestError> {
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        let malformed = || {
            RequestError::new(
                401,
                "InvalidAuthorization",
                "the authorization header is missing or malformed: expected acs:AccessKeyId:Signature",
            )
        };
        let (key_id, signature) = header("authorization")
            .and_then(|a| a.trim().strip_prefix("acs:"))
            .and_then(|a| a.rsplit_once(':'))
            .filter(|(id, sig)| !id.is_empty() && !sig.is_empty())
            .ok_or_else(malformed)?;
        let date = header("date")
            .ok_or_else(|| RequestError::new(400, "MissingDate", "the date header is required"))?;
        let time = DateTime::parse_from_rfc2822(date)
            .map_err(|_| {
                RequestError::new(
                    400,
                    "InvalidDate",
                    format!("the date header {date:?} is not an RFC 1123 date"),
                )
            })?
            .with_timezone(&Utc);
        if time.signed_duration_since(req.now).abs() > self.max_skew {
            return Err(RequestError::new(
                403,
                "InvalidTimeStamp.Expired",
                format!(
                    "Specified time stamp or date value is expired: {date} is more than {} minutes from the server's time.",
                    self.max_skew.num_minutes()
                ),
            ));
        }
        let Some(secret) = self.keys.get(key_id) else {
            return Err(RequestError::new(
                403,
                "InvalidAccessKeyId.NotFound",
                "Specified access key is not found.",
            ));
        };
        let nonce = header("x-acs-signature-nonce")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                RequestError::new(
                    400,
                    "MissingSignatureNonce",
                    "the x-acs-signature-nonce header is required",
                )
            })?;
        if nonce.len() > MAX_NONCE_LEN {
            return Err(RequestError::new(
                400,
                "InvalidSignatureNonce",
                format!("x-acs-signature-nonce is over {MAX_NONCE_LEN} characters"),
            ));
        }
        let md5 = header("content-md5");
        if md5.is_some_and(|md5| B64.encode(md5::Md5::digest(req.body)) != md5) {
            return Err(RequestError::new(
                400,
                "InvalidContentMD5",
                "the content-md5 header does not match the body",
            ));
        }
        if md5.is_none() && self.require_content_md5 {
            return Err(RequestError::new(
                400,
                "MissingContentMD5",
                "the content-md5 header is required (alibaba.require_content_md5), so the body is signed",
            ));
        }
        let expected = sign(secret, &string_to_sign(req));
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), signature.as_bytes()).into();
        if !matches {
            return Err(RequestError::new(
                403,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation.",
            ));
        }
        Ok(Verified {
            key_id: key_id.to_string(),
            nonce: nonce.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector of the Alibaba EventBridge SDKs' own tests
    /// (`EventBridgeUtilClient.get_signature`).
    #[test]
    fn signs_the_sdk_test_vector() {
        assert_eq!(
            sign(b"secret", "GET\n\n\n\n"),
            "Mzu+31oD5IDdv3WFBNIi4Y7JZto="
        );
    }
}

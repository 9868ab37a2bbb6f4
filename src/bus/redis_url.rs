//! Redis URLs, including TLS and ACL users: the one place a URL becomes a client.
//!
//! - `redis://[USER:PASSWORD@]HOST[:PORT][/DB]`: plain TCP. `USER:PASSWORD` logs in as
//!   an ACL user (`AUTH USER PASSWORD`); `:PASSWORD@` alone uses the `default` user.
//! - `rediss://...`: TLS. The server certificate is checked against the system's trust
//!   store (the `rustls-native-certs` roots) and the host name, unless the query names
//!   files (PEM) of Sluice's own:
//!   - `tls_ca=PATH`: trust only this CA (bundle) instead of the system roots;
//!   - `tls_cert=PATH` and `tls_key=PATH` (together): present this client certificate,
//!     for servers started with `tls-auth-clients yes`.
//!
//! The files are read when the client is built (at startup; `sluice check` reads them
//! too), so an unreadable path is reported then, with the parameter and the path. The
//! other query parameters (e.g. `protocol=resp3`) are the `redis` crate's.
//! Percent-encode reserved characters of user names and passwords (`@` is `%40`).

use redis::{ClientTlsConfig, ErrorKind, RedisError, TlsCertificates};

/// The TLS files a `rediss://` URL names (see the module docs).
const TLS_PARAMS: [&str; 3] = ["tls_ca", "tls_cert", "tls_key"];

fn invalid(what: &'static str, detail: String) -> RedisError {
    RedisError::from((ErrorKind::InvalidClientConfig, what, detail))
}

/// Builds the Redis client for a URL (see the module docs).
pub fn client(url: &str) -> Result<redis::Client, RedisError> {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Not a URL `url` understands (e.g. `redis+unix:`): let the redis crate judge.
        return redis::Client::open(url);
    };
    let mut files: [Option<String>; 3] = Default::default();
    let mut kept = Vec::new();
    for (k, v) in parsed.query_pairs() {
        match TLS_PARAMS.iter().position(|p| *p == k) {
            Some(i) => files[i] = Some(v.into_owned()),
            None => kept.push((k.into_owned(), v.into_owned())),
        }
    }
    if files.iter().all(Option::is_none) {
        return redis::Client::open(url);
    }
    if parsed.scheme() != "rediss" {
        return Err(invalid(
            "TLS options need a rediss:// URL",
            format!(
                "tls_ca, tls_cert and tls_key are for rediss://, not {}://",
                parsed.scheme()
            ),
        ));
    }
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    let read = |param: &str, path: &Option<String>| -> Result<Option<Vec<u8>>, RedisError> {
        match path {
            None => Ok(None),
            Some(path) => std::fs::read(path).map(Some).map_err(|e| {
                invalid(
                    "cannot read a TLS file of the Redis URL",
                    format!("{param}={path}: {e}"),
                )
            }),
        }
    };
    let root_cert = read("tls_ca", &files[0])?;
    let client_tls = match (read("tls_cert", &files[1])?, read("tls_key", &files[2])?) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: cert,
            client_key: key,
        }),
        (None, None) => None,
        _ => {
            return Err(invalid(
                "tls_cert and tls_key go together",
                "the Redis URL names one of tls_cert and tls_key without the other".into(),
            ))
        }
    };
    install_crypto_provider();
    redis::Client::build_with_tls(
        parsed.as_str(),
        TlsCertificates {
            client_tls,
            root_cert,
        },
    )
}

/// rustls needs a process-wide crypto provider when more than one is compiled in (the
/// AWS SDK brings aws-lc-rs, reqwest ring): Sluice uses aws-lc-rs. Installing twice is
/// harmless (the second attempt is refused and ignored).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(url: &str) -> String {
        match client(url) {
            Ok(_) => panic!("{url}: no error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn plain_and_acl_urls_are_the_redis_crate_s() {
        assert!(client("redis://127.0.0.1:6379").is_ok());
        assert!(client("redis://app:s%40cret@127.0.0.1:6379/2").is_ok());
        assert!(client("rediss://redis.example.com:6380").is_ok());
        assert!(client("nonsense").is_err());
    }

    #[test]
    fn tls_options_are_checked_when_the_client_is_built() {
        assert!(err("redis://h:1?tls_ca=/x").contains("not redis://"));
        assert!(err("rediss://h:1?tls_ca=/no/such/ca.pem").contains("tls_ca=/no/such/ca.pem"));
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("c.pem");
        std::fs::write(&pem, "not a certificate").unwrap();
        let cert_only = format!("rediss://h:1?tls_cert={}", pem.display());
        assert!(err(&cert_only).contains("without the other"));
    }
}

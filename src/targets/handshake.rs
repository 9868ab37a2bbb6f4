//! The abuse-protection handshake of the CloudEvents HTTP webhook spec (1.0.2, section
//! 4), for HTTP targets with `handshake: {origin: ...}`: before the first delivery to a
//! receiver origin (scheme, host, port) Sluice asks with `OPTIONS` and
//! `WebHook-Request-Origin`; deliveries go only once the receiver answered 2xx with
//! `WebHook-Allowed-Origin` naming that origin (or `*`), and at most at the
//! `WebHook-Allowed-Rate` it granted (requests per minute, paced per replica). A refusal
//! fails the attempt (retried as usual) and is asked again after [`REFUSAL_HOLD`].
//! Sluice sends no `WebHook-Request-Callback`, so receivers must answer synchronously.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::DeliveryError;

/// `handshake:` of an HTTP target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandshakeConfig {
    /// What Sluice names itself in `WebHook-Request-Origin` (a DNS name, e.g.
    /// `events.example.com`).
    pub origin: String,
}

impl HandshakeConfig {
    pub fn check(&self) -> Result<(), &'static str> {
        let ok = !self.origin.is_empty()
            && self.origin.len() <= 253
            && self
                .origin
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
        if ok {
            Ok(())
        } else {
            Err("must be a host name such as events.example.com")
        }
    }
}

/// How long a refusal is remembered before the receiver is asked again.
pub const REFUSAL_HOLD: Duration = Duration::from_secs(10);

#[derive(Debug)]
enum Verdict {
    /// May deliver; `every` is the pace of a granted rate.
    Allowed {
        every: Option<Duration>,
        next: Instant,
    },
    Refused {
        until: Instant,
        why: String,
    },
}

/// The handshake state of one target: a verdict per receiver origin.
#[derive(Debug)]
pub struct Handshake {
    origin: String,
    verdicts: Mutex<HashMap<String, Verdict>>,
}

impl Handshake {
    pub fn new(config: &HandshakeConfig) -> Handshake {
        Handshake {
            origin: config.origin.clone(),
            verdicts: Mutex::default(),
        }
    }

    /// Waits until a delivery to `url` may go: asks the receiver first if it was not
    /// asked yet, then keeps to its rate. An error when the receiver refused.
    pub async fn admit(
        &self,
        client: &reqwest::Client,
        url: &url::Url,
    ) -> Result<(), DeliveryError> {
        let key = url.origin().ascii_serialization();
        // One question at a time per target: concurrent deliveries wait for its answer.
        let mut verdicts = self.verdicts.lock().await;
        let now = Instant::now();
        let ask = match verdicts.get(&key) {
            None => true,
            Some(Verdict::Refused { until, .. }) => *until <= now,
            Some(Verdict::Allowed { .. }) => false,
        };
        if ask {
            let verdict = self.ask(client, url).await;
            verdicts.insert(key.clone(), verdict);
        }
        match verdicts.get_mut(&key).expect("inserted above") {
            Verdict::Refused { why, .. } => Err(DeliveryError::Failed {
                message: format!("webhook handshake: {why}"),
                retryable: true,
            }),
            Verdict::Allowed { every: None, .. } => Ok(()),
            Verdict::Allowed {
                every: Some(every),
                next,
            } => {
                let now = Instant::now();
                let at = (*next).max(now);
                *next = at + *every;
                drop(verdicts);
                tokio::time::sleep_until(at).await;
                Ok(())
            }
        }
    }

    async fn ask(&self, client: &reqwest::Client, url: &url::Url) -> Verdict {
        let refused = |why: String| {
            tracing::warn!(url = %url, %why, "webhook handshake refused; deliveries wait");
            Verdict::Refused {
                until: Instant::now() + REFUSAL_HOLD,
                why,
            }
        };
        let response = client
            .request(reqwest::Method::OPTIONS, url.clone())
            .header("WebHook-Request-Origin", &self.origin)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => return refused(format!("OPTIONS failed: {e}")),
        };
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_string())
        };
        let allowed_origin = header("webhook-allowed-origin");
        let rate = header("webhook-allowed-rate");
        let _ = response.bytes().await;
        if !status.is_success() {
            return refused(format!(
                "the receiver answered OPTIONS with HTTP {}",
                status.as_u16()
            ));
        }
        match allowed_origin.as_deref() {
            Some(o) if o == "*" || o.eq_ignore_ascii_case(&self.origin) => {}
            Some(o) => {
                return refused(format!(
                    "the receiver allows origin {o:?}, not {:?}",
                    self.origin
                ))
            }
            None => return refused("the receiver sent no WebHook-Allowed-Origin".into()),
        }
        // Requests per minute; `*` or none: no limit.
        let per_minute = rate.and_then(|r| r.parse::<u32>().ok());
        if per_minute == Some(0) {
            return refused("the receiver allows a rate of 0".into());
        }
        let every = per_minute.map(|per_minute| Duration::from_secs(60) / per_minute);
        tracing::info!(url = %url, ?every, "webhook handshake: the receiver allows deliveries");
        Verdict::Allowed {
            every,
            next: Instant::now(),
        }
    }
}

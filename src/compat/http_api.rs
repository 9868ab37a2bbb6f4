//! An HTTP API called with a connection's auth, as AWS EventBridge (connections and API
//! destinations) and RocketMQ-EventBridge (the same model in camelCase) describe it,
//! made into a native `http` target. Both facades build their targets here.

use base64::Engine;
use serde_json::{json, Map, Value};

/// How a connection authorizes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    ApiKey,
    Basic,
    OAuthClientCredentials,
    None,
}

/// An `Authorization: Basic` value.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// `[{Key, Value}, ...]` as a map (entries without both skipped).
fn pairs(list: &Value) -> Map<String, Value> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["Key"].as_str()?.to_string(), p["Value"].as_str()?.into())))
        .collect()
}

/// The `http` target calling `url` with `method`, authorized as `auth` says with the
/// parameters of `params` (AWS's `AuthParameters` shape, PascalCase), rate-limited to
/// `rate` calls per second.
pub fn target(url: &Value, method: &str, auth: Auth, params: &Value, rate: Option<u64>) -> Value {
    let mut headers = Map::new();
    let mut target = json!({"kind": "http", "url": url, "method": method.to_ascii_uppercase()});
    match auth {
        Auth::ApiKey => {
            let key = &params["ApiKeyAuthParameters"];
            if let (Some(k), Some(v)) = (key["ApiKeyName"].as_str(), key["ApiKeyValue"].as_str()) {
                headers.insert(k.into(), v.into());
            }
        }
        Auth::Basic => {
            let b = &params["BasicAuthParameters"];
            headers.insert(
                "Authorization".into(),
                basic_auth(
                    b["Username"].as_str().unwrap_or_default(),
                    b["Password"].as_str().unwrap_or_default(),
                )
                .into(),
            );
        }
        Auth::OAuthClientCredentials => {
            let o = &params["OAuthParameters"];
            let http = &o["OAuthHttpParameters"];
            target["oauth"] = json!({
                "token_url": o["AuthorizationEndpoint"],
                "method": o["HttpMethod"].as_str().unwrap_or("POST").to_ascii_uppercase(),
                "client_id": o["ClientParameters"]["ClientID"].as_str().unwrap_or_default(),
                "client_secret": o["ClientParameters"]["ClientSecret"].as_str().unwrap_or_default(),
                "body": pairs(&http["BodyParameters"]),
                "query": pairs(&http["QueryStringParameters"]),
                "headers": pairs(&http["HeaderParameters"]),
            });
        }
        Auth::None => {}
    }
    let invocation = &params["InvocationHttpParameters"];
    headers.extend(pairs(&invocation["HeaderParameters"]));
    let query = pairs(&invocation["QueryStringParameters"]);
    if !headers.is_empty() {
        target["headers"] = Value::Object(headers);
    }
    if !query.is_empty() {
        target["query"] = Value::Object(query);
    }
    if let Some(rate) = rate.filter(|r| *r > 0) {
        target["rate"] = json!({"per_second": rate});
    }
    target
}

/// A camelCase object as the PascalCase one AWS writes (`oauth...` keys as `OAuth...`),
/// so RocketMQ-EventBridge's connections take the same path.
pub fn pascal(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = match k.strip_prefix("oauth") {
                        Some(rest) => format!("OAuth{rest}"),
                        None => {
                            let mut chars = k.chars();
                            match chars.next() {
                                Some(first) => first.to_uppercase().chain(chars).collect(),
                                None => String::new(),
                            }
                        }
                    };
                    (key, pascal(v))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(pascal).collect()),
        other => other.clone(),
    }
}

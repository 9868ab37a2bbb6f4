//! Who may do what: bearer tokens with roles, for the control API and for ingest.
//!
//! Roles: `admin` (everything, tokens and the audit stream), `operator` (every write
//! but tokens), `viewer` (reads), `publisher` (ingest only, never `/api/v1`). A token may
//! be scoped to buses: it then reaches only `/api/v1/buses/{bus}/...` and
//! `/api/v1/dlq/{bus}/...` of those buses (and, as a publisher, ingest to them).
//!
//! The bootstrap admin token is `api.token` of the file (or `SLUICE_API_TOKEN`). Tokens
//! made through `POST /api/v1/tokens` are kept in Redis as the SHA-256 of the token only
//! (`sluice:{control}:tokens`); every replica holds them in memory, reloaded when the
//! tokens' revision changes (checked every 500 ms), so a check costs no round trip and a
//! revoked token stops working everywhere within a second. Comparisons are of digests,
//! in constant time.
//!
//! Without a bootstrap token and before any token exists, only loopback clients are
//! served (as admin), so a fresh `sluice dev` is usable and a public gateway is not open.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use super::store::{self, AUDIT_KEY, AUDIT_MAX};
use crate::bus::{within, BusError};
use crate::ingress::error::ApiError;
use crate::live::Live;

pub const TOKENS_KEY: &str = "sluice:{control}:tokens";
pub const TOKENS_REV_KEY: &str = "sluice:{control}:tokens:rev";
/// How often a replica checks the tokens' revision.
const REFRESH: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Publisher,
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// Who a request comes from (in the request's extensions once authorized).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub id: String,
    pub role: Role,
    /// Buses the token is scoped to; empty: all.
    #[serde(default)]
    pub buses: Vec<String>,
}

impl Principal {
    pub fn may_use_bus(&self, bus: &str) -> bool {
        self.buses.is_empty() || self.buses.iter().any(|b| b == bus)
    }
}

/// A stored token's record (never the token itself).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub role: Role,
    #[serde(default)]
    pub buses: Vec<String>,
    #[serde(default)]
    pub description: String,
    pub created_at: u64,
    pub created_by: String,
}

/// The tokens this replica knows: the bootstrap one and those of the store.
pub struct Tokens {
    bootstrap: Option<[u8; 32]>,
    /// SHA-256 of the token -> its record.
    stored: Live<HashMap<[u8; 32], TokenRecord>>,
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl Tokens {
    pub fn new(bootstrap: Option<&[u8]>) -> Tokens {
        Tokens {
            bootstrap: bootstrap.map(digest),
            stored: Live::new(HashMap::new()),
        }
    }

    /// Whether any token can be presented (else loopback clients are admin).
    fn required(&self) -> bool {
        self.bootstrap.is_some() || !self.stored.get().is_empty()
    }

    /// The principal of a presented token.
    pub fn principal(&self, token: &str) -> Option<Principal> {
        let d = digest(token.as_bytes());
        if let Some(b) = &self.bootstrap {
            if bool::from(b.ct_eq(&d)) {
                return Some(Principal {
                    id: "bootstrap".into(),
                    role: Role::Admin,
                    buses: Vec::new(),
                });
            }
        }
        // A map lookup by digest: what it compares is a hash of the secret, so its timing
        // tells nothing about the token.
        self.stored.get().get(&d).map(|r| Principal {
            id: r.id.clone(),
            role: r.role,
            buses: r.buses.clone(),
        })
    }

    /// Reloads the stored tokens from Redis.
    async fn reload(&self, conn: &mut ConnectionManager) -> Result<(), BusError> {
        let raw: HashMap<String, String> =
            within(redis::cmd("HGETALL").arg(TOKENS_KEY).query_async(conn)).await?;
        let mut tokens = HashMap::new();
        for (hash, json) in raw {
            let (Ok(bytes), Ok(record)) = (hex::decode(&hash), serde_json::from_str(&json)) else {
                tracing::error!(%hash, "unreadable token record skipped");
                continue;
            };
            if let Ok(key) = <[u8; 32]>::try_from(bytes) {
                tokens.insert(key, record);
            }
        }
        self.stored.set(tokens);
        Ok(())
    }
}

/// Keeps `tokens` equal to the store's until `shutdown`.
pub async fn run_refresh(
    tokens: Arc<Tokens>,
    mut conn: ConnectionManager,
    shutdown: CancellationToken,
) {
    let mut loaded: Option<u64> = None;
    loop {
        let rev: Result<Option<u64>, _> =
            within(redis::cmd("GET").arg(TOKENS_REV_KEY).query_async(&mut conn)).await;
        match rev {
            Ok(rev) if Some(rev.unwrap_or(0)) != loaded => match tokens.reload(&mut conn).await {
                Ok(()) => loaded = Some(rev.unwrap_or(0)),
                Err(e) => tracing::warn!(error = %e, "reloading the tokens failed; retrying"),
            },
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "reading the tokens' revision failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(REFRESH) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// The bearer token of a request, if any.
pub fn bearer(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim().to_string())
        })
}

/// The role a request needs, and the bus its path is about: the whole policy.
pub fn needs(method: &Method, path: &str) -> (Role, Option<String>) {
    let rest = path
        .strip_prefix("/api/v1")
        .unwrap_or(path)
        .trim_start_matches('/');
    let mut segments = rest.split('/');
    let first = segments.next().unwrap_or_default();
    let bus = match first {
        "buses" | "dlq" | "targets" => segments.next().filter(|s| !s.is_empty()).map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        }),
        _ => None,
    };
    let read = matches!(*method, Method::GET | Method::HEAD);
    let role = match first {
        "tokens" | "audit" => Role::Admin,
        // Trying a pattern or a transform changes nothing.
        "test-pattern" | "transform" => Role::Viewer,
        _ if read => Role::Viewer,
        _ => Role::Operator,
    };
    (role, bus)
}

/// Why `principal` may not make this request, if it may not.
pub fn refuse(principal: &Principal, method: &Method, path: &str) -> Option<ApiError> {
    let (role, bus) = needs(method, path);
    if principal.role == Role::Publisher {
        return Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a publisher token only ingests events; the control API needs role viewer or higher",
        ));
    }
    if principal.role < role {
        return Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this needs role {} or higher; the token has role {}",
                role.as_str(),
                principal.role.as_str()
            ),
        ));
    }
    if !principal.buses.is_empty() {
        match bus {
            Some(bus) if principal.may_use_bus(&bus) => {}
            _ => {
                return Some(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!(
                        "the token is scoped to bus(es) {}: only /api/v1/buses/BUS/... and /api/v1/dlq/BUS/... of those",
                        principal.buses.join(", ")
                    ),
                ))
            }
        }
    }
    None
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// The middleware of `/api/v1`: 401 without a valid token (once tokens exist), 403 for a
/// role too low; the [`Principal`] goes into the request's extensions.
pub async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let tokens = req
        .app_data::<web::Data<Tokens>>()
        .cloned()
        .expect("the control scope has the tokens");
    let principal = match bearer(req.request()) {
        Some(token) => tokens
            .principal(&token)
            .ok_or_else(|| unauthorized("the bearer token is unknown or revoked")),
        None if tokens.required() => Err(unauthorized(
            "the control API needs an authorization: Bearer header (api.token or a token made with sluice token create)",
        )),
        None => {
            let loopback = req.peer_addr().is_some_and(|a| a.ip().is_loopback());
            if loopback {
                Ok(Principal {
                    id: "loopback".into(),
                    role: Role::Admin,
                    buses: Vec::new(),
                })
            } else {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "without api.token (or a token) the control API only serves loopback clients",
                ))
            }
        }
    };
    let refusal = match principal {
        Ok(p) => match refuse(&p, req.method(), req.path()) {
            None => {
                req.extensions_mut().insert(p);
                None
            }
            Some(e) => Some(e),
        },
        Err(e) => Some(e),
    };
    match refusal {
        Some(e) => {
            let mut response = e.error_response();
            if e.status == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    actix_web::http::header::WWW_AUTHENTICATE,
                    actix_web::http::header::HeaderValue::from_static("Bearer"),
                );
            }
            Ok(req.into_response(response))
        }
        None => Ok(next.call(req).await?.map_into_boxed_body()),
    }
}

/// The actor of a request for the audit stream: the principal's id.
pub fn actor(req: &HttpRequest) -> String {
    req.extensions()
        .get::<Principal>()
        .map_or_else(|| "unknown".to_string(), |p| p.id.clone())
}

// ---- the tokens API ----

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/tokens", web::get().to(list))
        .route("/tokens", web::post().to(create))
        .route("/tokens/{id}", web::delete().to(revoke));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    role: Role,
    #[serde(default)]
    buses: Vec<String>,
    #[serde(default)]
    description: String,
}

static CREATE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'actor', ARGV[3], 'action', 'token.create',
  'kind', 'token', 'name', ARGV[4], 'old_version', '', 'new_version', '', 'time', ARGV[5])
return 1
"#,
    )
});

static REVOKE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if cjson.decode(all[i + 1])['id'] == ARGV[1] then
    redis.call('HDEL', KEYS[1], all[i])
    redis.call('INCR', KEYS[2])
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'actor', ARGV[2], 'action', 'token.revoke',
      'kind', 'token', 'name', ARGV[1], 'old_version', '', 'new_version', '', 'time', ARGV[3])
    return 1
  end
end
return 0
"#,
    )
});

fn redis_error(e: BusError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "redis_unavailable",
        format!("the token store is unavailable: {e}"),
    )
}

/// A new random token: 32 bytes from the OS's CSPRNG (through uuid v4's `getrandom`,
/// 122 random bits each), hex.
fn new_secret() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    format!("sl_{}{}", a.simple(), b.simple())
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens",
    request_body(content = Object, description = "`{\"role\": \"admin\"|\"operator\"|\"viewer\"|\"publisher\", \"buses\": [...], \"description\": \"...\"}`", content_type = "application/json"),
    responses(
        (status = 201, description = "the token's record and, this once, `token`", body = Object),
        (status = 400, description = "invalid body (role, bus names)"),
        (status = 503, description = "the token store is unavailable"),
    )
)]
/// `POST /api/v1/tokens` `{"role", "buses", "description"}` -> 201 with the token, shown
/// this once.
pub(super) async fn create(
    req: HttpRequest,
    redis: web::Data<super::resources::ResourceApi>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: CreateToken = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("invalid token request: {e}"),
        )
    })?;
    for (i, bus) in request.buses.iter().enumerate() {
        if let Err(m) = crate::config::check_name(bus) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("buses[{i}]: {m}"),
            )
            .field(format!("buses[{i}]")));
        }
    }
    let secret = new_secret();
    let id = format!("tok_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let actor = actor(&req);
    let record = TokenRecord {
        id: id.clone(),
        role: request.role,
        buses: request.buses,
        description: request.description,
        created_at: store::now_ms(),
        created_by: actor.clone(),
    };
    let json = serde_json::to_string(&record).expect("a record serialises");
    let _: i64 = within(
        CREATE
            .key(TOKENS_KEY)
            .key(TOKENS_REV_KEY)
            .key(AUDIT_KEY)
            .arg(hex::encode(digest(secret.as_bytes())))
            .arg(json)
            .arg(&actor)
            .arg(&id)
            .arg(record.created_at)
            .arg(AUDIT_MAX)
            .invoke_async(&mut redis.redis.clone()),
    )
    .await
    .map_err(redis_error)?;
    let mut body = serde_json::to_value(&record).expect("a record serialises");
    body["token"] = json!(secret);
    Ok(HttpResponse::Created().json(body))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses(
        (status = 200, description = "`{\"items\": [records], \"next\": null}`, never the tokens", body = Object),
        (status = 503, description = "the token store is unavailable"),
    )
)]
/// `GET /api/v1/tokens`: every token's record, never the token.
pub(super) async fn list(
    redis: web::Data<super::resources::ResourceApi>,
) -> Result<HttpResponse, ApiError> {
    let raw: HashMap<String, String> = within(
        redis::cmd("HGETALL")
            .arg(TOKENS_KEY)
            .query_async(&mut redis.redis.clone()),
    )
    .await
    .map_err(redis_error)?;
    let mut items: Vec<TokenRecord> = raw
        .values()
        .filter_map(|j| serde_json::from_str(j).ok())
        .collect();
    items.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(HttpResponse::Ok().json(json!({"items": items, "next": null})))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "the token's id (`tok_...`)")),
    responses(
        (status = 204, description = "revoked: it stops working on every replica within a second"),
        (status = 404, description = "no such token"),
        (status = 503, description = "the token store is unavailable"),
    )
)]
/// `DELETE /api/v1/tokens/{id}`: 204; 404 for an unknown id.
pub(super) async fn revoke(
    req: HttpRequest,
    redis: web::Data<super::resources::ResourceApi>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let revoked: i64 = within(
        REVOKE
            .key(TOKENS_KEY)
            .key(TOKENS_REV_KEY)
            .key(AUDIT_KEY)
            .arg(&id)
            .arg(actor(&req))
            .arg(store::now_ms())
            .arg(AUDIT_MAX)
            .invoke_async(&mut redis.redis.clone()),
    )
    .await
    .map_err(redis_error)?;
    if revoked == 1 {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no token {id:?}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(role: Role, buses: &[&str]) -> Principal {
        Principal {
            id: "t".into(),
            role,
            buses: buses.iter().map(|b| b.to_string()).collect(),
        }
    }

    #[test]
    fn the_policy_as_a_table() {
        use Role::*;
        let get = Method::GET;
        let put = Method::PUT;
        let post = Method::POST;
        let del = Method::DELETE;
        // (principal, method, path, allowed)
        let cases: &[(Principal, &Method, &str, bool)] = &[
            (p(Admin, &[]), &post, "/api/v1/tokens", true),
            (p(Operator, &[]), &post, "/api/v1/tokens", false),
            (p(Operator, &[]), &get, "/api/v1/tokens", false),
            (p(Operator, &[]), &get, "/api/v1/audit", false),
            (p(Admin, &[]), &get, "/api/v1/audit", true),
            (p(Operator, &[]), &put, "/api/v1/buses/orders/rules/r", true),
            (p(Operator, &[]), &del, "/api/v1/sources/gh", true),
            (p(Operator, &[]), &post, "/api/v1/dlq/b/r/t/redrive", true),
            (p(Viewer, &[]), &get, "/api/v1/buses", true),
            (p(Viewer, &[]), &put, "/api/v1/buses/orders", false),
            (p(Viewer, &[]), &post, "/api/v1/test-pattern", true),
            (p(Viewer, &[]), &post, "/api/v1/apply", false),
            (p(Publisher, &[]), &get, "/api/v1/buses", false),
            (
                p(Viewer, &["orders"]),
                &get,
                "/api/v1/buses/orders/rules",
                true,
            ),
            (
                p(Viewer, &["orders"]),
                &get,
                "/api/v1/buses/other/rules",
                false,
            ),
            (p(Viewer, &["orders"]), &get, "/api/v1/buses", false),
            (
                p(Operator, &["orders"]),
                &post,
                "/api/v1/dlq/orders/r/t/purge",
                true,
            ),
            (p(Operator, &["orders"]), &post, "/api/v1/apply", false),
        ];
        for (principal, method, path, allowed) in cases {
            assert_eq!(
                refuse(principal, method, path).is_none(),
                *allowed,
                "{principal:?} {method} {path}"
            );
        }
    }

    #[test]
    fn tokens_are_found_by_digest_and_the_bootstrap_is_admin() {
        let tokens = Tokens::new(Some(b"boot"));
        assert_eq!(tokens.principal("boot").unwrap().role, Role::Admin);
        assert!(tokens.principal("other").is_none());
        let mut stored = HashMap::new();
        stored.insert(
            digest(b"sl_x"),
            TokenRecord {
                id: "tok_1".into(),
                role: Role::Viewer,
                buses: vec![],
                description: String::new(),
                created_at: 0,
                created_by: "t".into(),
            },
        );
        tokens.stored.set(stored);
        assert_eq!(tokens.principal("sl_x").unwrap().id, "tok_1");
        assert!(tokens.required());
    }
}

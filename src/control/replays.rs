//! `/api/v1/archives` and `/api/v1/replays`: a bus's archives (kept in the bus resource,
//! `archives:`, so they are written, checked and hot-reloaded like every resource) and
//! the replays of a window into a bus. The AWS facade's archive and replay operations
//! call the functions here.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::events::{bad, time_ms};
use super::resources::{current, read_only, redis_error, ResourceApi};
use super::store::Kind;
use crate::compat::edit;
use crate::ingress::error::ApiError;
use crate::replay::{self, Replay, ReplaySpec};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/archives", web::get().to(list_archives))
        .route("/archives/{name}", web::get().to(get_archive))
        .route("/archives/{name}", web::put().to(put_archive))
        .route("/archives/{name}", web::delete().to(delete_archive))
        .route("/replays", web::get().to(list_replays))
        .route("/replays", web::post().to(start_replay))
        .route("/replays/{name}", web::get().to(get_replay))
        .route("/replays/{name}/cancel", web::post().to(cancel_replay));
}

fn not_found(what: &str, name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no {what} {name:?}"),
    )
}

/// Every archive of every bus: (bus, archive spec).
pub(crate) fn archives(merged: &super::document::Merged) -> Vec<(String, Value)> {
    let buses = merged
        .top
        .get(Kind::Bus.section())
        .and_then(Value::as_array);
    let mut out = Vec::new();
    for bus in buses.into_iter().flatten() {
        let Some(name) = bus.get("name").and_then(Value::as_str) else {
            continue;
        };
        for a in bus
            .get("archives")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push((name.to_string(), a.clone()));
        }
    }
    out
}

/// The archive named `name`: its bus and spec.
pub(crate) fn find_archive(
    merged: &super::document::Merged,
    name: &str,
) -> Option<(String, Value)> {
    archives(merged)
        .into_iter()
        .find(|(_, a)| a.get("name").and_then(Value::as_str) == Some(name))
}

/// An archive as the API shows it, with what it holds.
pub(crate) async fn archive_view(api: &ResourceApi, bus: &str, spec: &Value) -> Value {
    let name = spec["name"].as_str().unwrap_or_default();
    let (segments, events, bytes) = crate::archive::size(&mut api.redis.clone(), bus, name)
        .await
        .unwrap_or_default();
    let mut view = spec.clone();
    view["bus"] = bus.into();
    view["retention_days"] = spec.get("retention_days").cloned().unwrap_or(0.into());
    view["segments"] = segments.into();
    view["events"] = events.into();
    view["bytes"] = bytes.into();
    view
}

/// Creates or replaces the archive `name` of `bus` (its spec without `bus`); a name
/// taken on another bus is refused. Whether it was created.
pub(crate) async fn write_archive(
    api: &ResourceApi,
    actor: &str,
    bus: &str,
    name: &str,
    mut spec: Value,
) -> Result<bool, ApiError> {
    spec["name"] = name.into();
    let mut created = false;
    edit(
        api,
        actor,
        |merged| {
            if let Some((other, _)) = find_archive(merged, name).filter(|(b, _)| b != bus) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "exists",
                    format!("archive {name:?} belongs to bus {other:?}: archive names are unique across buses"),
                )
                .field("name"));
            }
            let mut bus_spec = merged
                .get(Kind::Bus, bus)
                .cloned()
                .ok_or_else(|| not_found("bus", bus).field("bus"))?;
            let list = bus_spec
                .as_object_mut()
                .expect("a bus is an object")
                .entry("archives")
                .or_insert_with(|| json!([]));
            let list = list.as_array_mut().ok_or_else(|| bad("archives", "must be a list"))?;
            match list.iter_mut().find(|a| a["name"] == name) {
                Some(existing) => *existing = spec.clone(),
                None => {
                    created = true;
                    list.push(spec.clone());
                }
            }
            Ok(vec![(Kind::Bus, bus.to_string(), Some(bus_spec))])
        },
        read_only,
    )
    .await?;
    Ok(created)
}

/// Deletes the archive `name` and what it holds.
pub(crate) async fn remove_archive(
    api: &ResourceApi,
    actor: &str,
    name: &str,
) -> Result<(), ApiError> {
    let mut bus = None;
    edit(
        api,
        actor,
        |merged| {
            let (owner, _) =
                find_archive(merged, name).ok_or_else(|| not_found("archive", name))?;
            let mut bus_spec = merged.get(Kind::Bus, &owner).cloned().expect("found above");
            if let Some(list) = bus_spec.get_mut("archives").and_then(Value::as_array_mut) {
                list.retain(|a| a["name"] != name);
            }
            bus = Some(owner.clone());
            Ok(vec![(Kind::Bus, owner, Some(bus_spec))])
        },
        read_only,
    )
    .await?;
    if let Some(bus) = bus {
        drop_archive_data(api, &bus, name)
            .await
            .map_err(redis_error)?;
    }
    Ok(())
}

/// Deletes an archive's segments, index and intake.
async fn drop_archive_data(
    api: &ResourceApi,
    bus: &str,
    name: &str,
) -> Result<(), crate::bus::BusError> {
    let mut conn = api.redis.clone();
    let index = crate::archive::segments_key(bus, name);
    let members: Vec<String> = crate::bus::within(
        redis::cmd("ZRANGE")
            .arg(&index)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn),
    )
    .await?;
    for chunk in members.chunks(500) {
        let keys: Vec<String> = chunk
            .iter()
            .map(|m| crate::archive::segment_key(bus, name, m))
            .collect();
        crate::bus::within(redis::cmd("DEL").arg(&keys).query_async::<()>(&mut conn)).await?;
    }
    crate::bus::within(
        redis::cmd("DEL")
            .arg(&index)
            .arg(crate::archive::intake_key(bus, name))
            .arg(crate::archive::size_key(bus, name))
            .query_async::<()>(&mut conn),
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/archives", tag = "replays",
    responses((status = 200, description = "every archive of every bus, with its segments, events and bytes")))]
/// Every archive, with what it holds.
pub(crate) async fn list_archives(api: web::Data<ResourceApi>) -> Result<HttpResponse, ApiError> {
    let (_, merged) = current(&api).await?;
    let mut out = Vec::new();
    for (bus, spec) in archives(&merged) {
        out.push(archive_view(&api, &bus, &spec).await);
    }
    Ok(HttpResponse::Ok().json(json!({ "archives": out })))
}

#[utoipa::path(get, path = "/api/v1/archives/{name}", tag = "replays",
    params(("name" = String, Path, description = "the archive")),
    responses((status = 200, description = "the archive"), (status = 404, description = "no such archive")))]
/// One archive, with what it holds.
pub(crate) async fn get_archive(
    path: web::Path<String>,
    api: web::Data<ResourceApi>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let (_, merged) = current(&api).await?;
    let (bus, spec) = find_archive(&merged, &name).ok_or_else(|| not_found("archive", &name))?;
    Ok(HttpResponse::Ok().json(archive_view(&api, &bus, &spec).await))
}

#[utoipa::path(put, path = "/api/v1/archives/{name}", tag = "replays",
    params(("name" = String, Path, description = "the archive")),
    request_body(content = inline(Object), description = "`bus` and the archive's fields (`pattern`, `dialect`, `retention_days`, `description`)"),
    responses(
        (status = 200, description = "replaced"),
        (status = 201, description = "created"),
        (status = 400, description = "invalid (`field` names it)"),
        (status = 404, description = "no such bus"),
        (status = 409, description = "the name is taken on another bus, or the bus is the file's"),
    ))]
/// Creates or replaces an archive of a bus.
pub(crate) async fn put_archive(
    req: HttpRequest,
    path: web::Path<String>,
    body: Result<web::Json<Value>, actix_web::Error>,
    api: web::Data<ResourceApi>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    crate::config::Name::check(&name).map_err(|m| bad("name", m))?;
    let mut spec = body.map_err(|e| bad("body", e.to_string()))?.into_inner();
    let Some(map) = spec.as_object_mut() else {
        return Err(bad("body", "must be a JSON object"));
    };
    let bus = match map.remove("bus") {
        Some(Value::String(b)) => b,
        _ => return Err(bad("bus", "the archive's bus is required")),
    };
    let created = write_archive(&api, &super::auth::actor(&req), &bus, &name, spec).await?;
    let (_, merged) = current(&api).await?;
    let (bus, spec) = find_archive(&merged, &name).ok_or_else(|| not_found("archive", &name))?;
    let view = archive_view(&api, &bus, &spec).await;
    Ok(if created {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

#[utoipa::path(delete, path = "/api/v1/archives/{name}", tag = "replays",
    params(("name" = String, Path, description = "the archive")),
    responses((status = 204, description = "deleted, with its segments"), (status = 404, description = "no such archive")))]
/// Deletes an archive and its segments.
pub(crate) async fn delete_archive(
    req: HttpRequest,
    path: web::Path<String>,
    api: web::Data<ResourceApi>,
) -> Result<HttpResponse, ApiError> {
    remove_archive(&api, &super::auth::actor(&req), &path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A replay as the API shows it.
pub(crate) fn replay_view(r: &Replay) -> Value {
    let time = |ms: u64| {
        chrono::DateTime::from_timestamp_millis(ms as i64)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    json!({
        "name": r.spec.name,
        "bus": r.spec.bus,
        "archive": r.spec.archive,
        "since": time(r.spec.since_ms),
        "until": time(r.spec.until_ms),
        "rules": r.spec.rules,
        "rate": r.spec.rate,
        "description": r.spec.description,
        "state": r.state.as_str(),
        "replayed": r.replayed,
        "last_replayed": r.last_ms.and_then(time),
        "started": time(r.started_ms),
        "ended": r.ended_ms.and_then(time),
        "reason": r.reason,
    })
}

/// Checks a replay against the configuration in force and makes it (409 if the name is
/// taken).
pub(crate) async fn make_replay(
    api: &ResourceApi,
    mut spec: ReplaySpec,
) -> Result<Replay, ApiError> {
    // A window reaching into the future would follow the live bus (or miss what is
    // archived later): it ends now.
    spec.until_ms = spec.until_ms.min(crate::observability::trace::now_ms());
    crate::config::Name::check(&spec.name).map_err(|m| bad("name", m))?;
    let (_, merged) = current(api).await?;
    if merged.get(Kind::Bus, &spec.bus).is_none() {
        return Err(not_found("bus", &spec.bus).field("bus"));
    }
    if let Some(archive) = &spec.archive {
        match find_archive(&merged, archive) {
            Some((bus, _)) if bus == spec.bus => {}
            Some((bus, _)) => {
                return Err(bad(
                    "archive",
                    format!("archive {archive:?} is of bus {bus:?}: a replay goes into the archive's own bus"),
                ))
            }
            None => return Err(not_found("archive", archive).field("archive")),
        }
    }
    if spec.since_ms > spec.until_ms {
        return Err(bad(
            "until",
            "must not be before since (and since not in the future: a window ends now at the latest)",
        ));
    }
    for rule in &spec.rules {
        if merged
            .get(Kind::Rule, &format!("{}/{rule}", spec.bus))
            .is_none()
        {
            return Err(bad(
                "rules",
                format!("bus {:?} has no rule {rule:?}", spec.bus),
            ));
        }
    }
    if spec.rate == Some(0) {
        return Err(bad("rate", "must be at least 1 event per second"));
    }
    let mut conn = api.redis.clone();
    if !replay::create(&mut conn, &spec)
        .await
        .map_err(redis_error)?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "exists",
            format!("a replay named {:?} exists", spec.name),
        )
        .field("name"));
    }
    replay::get(&mut conn, &spec.name)
        .await
        .map_err(redis_error)?
        .ok_or_else(|| not_found("replay", &spec.name))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartBody {
    name: String,
    bus: String,
    /// Absent: the bus's retained events.
    archive: Option<String>,
    since: String,
    until: Option<String>,
    #[serde(default)]
    rules: Vec<String>,
    rate: Option<u32>,
    description: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/replays", tag = "replays",
    request_body(content = inline(Object), description = "`name`, `bus`, `archive` (absent: the bus's retention), `since`, `until` (RFC 3339 or a duration ago), `rules`, `rate` (events/s), `description`"),
    responses(
        (status = 201, description = "started (state STARTING)"),
        (status = 400, description = "invalid (`field` names it)"),
        (status = 404, description = "no such bus or archive"),
        (status = 409, description = "a replay of that name exists"),
    ))]
/// Starts a replay of a window into a bus.
pub(crate) async fn start_replay(
    body: Result<web::Json<StartBody>, actix_web::Error>,
    api: web::Data<ResourceApi>,
) -> Result<HttpResponse, ApiError> {
    let body = body.map_err(|e| bad("body", e.to_string()))?.into_inner();
    let now = crate::observability::trace::now_ms();
    let spec = ReplaySpec {
        name: body.name,
        bus: body.bus,
        archive: body.archive,
        since_ms: time_ms("since", &body.since, now)?,
        until_ms: match &body.until {
            Some(u) => time_ms("until", u, now)?,
            None => now,
        },
        rules: body.rules,
        rate: body.rate,
        description: body.description,
    };
    let replay = make_replay(&api, spec).await?;
    Ok(HttpResponse::Created().json(replay_view(&replay)))
}

#[utoipa::path(get, path = "/api/v1/replays", tag = "replays",
    responses((status = 200, description = "every replay, with its state and progress")))]
/// Every replay.
pub(crate) async fn list_replays(api: web::Data<ResourceApi>) -> Result<HttpResponse, ApiError> {
    let replays = replay::list(&mut api.redis.clone())
        .await
        .map_err(redis_error)?;
    let out: Vec<Value> = replays.iter().map(replay_view).collect();
    Ok(HttpResponse::Ok().json(json!({ "replays": out })))
}

#[utoipa::path(get, path = "/api/v1/replays/{name}", tag = "replays",
    params(("name" = String, Path, description = "the replay")),
    responses((status = 200, description = "the replay's state and progress"), (status = 404, description = "no such replay")))]
/// One replay: state and progress.
pub(crate) async fn get_replay(
    path: web::Path<String>,
    api: web::Data<ResourceApi>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let replay = replay::get(&mut api.redis.clone(), &name)
        .await
        .map_err(redis_error)?
        .ok_or_else(|| not_found("replay", &name))?;
    Ok(HttpResponse::Ok().json(replay_view(&replay)))
}

#[utoipa::path(post, path = "/api/v1/replays/{name}/cancel", tag = "replays",
    params(("name" = String, Path, description = "the replay")),
    responses(
        (status = 200, description = "cancelling (the runner stops after its current batch)"),
        (status = 404, description = "no such replay"),
        (status = 409, description = "the replay has ended"),
    ))]
/// Cancels a replay.
pub(crate) async fn cancel_replay(
    path: web::Path<String>,
    api: web::Data<ResourceApi>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let mut conn = api.redis.clone();
    match replay::cancel(&mut conn, &name)
        .await
        .map_err(redis_error)?
    {
        None => Err(not_found("replay", &name)),
        Some(state) if state.is_final() => Err(ApiError::new(
            StatusCode::CONFLICT,
            "ended",
            format!("replay {name:?} has ended ({})", state.as_str()),
        )),
        Some(_) => {
            let replay = replay::get(&mut conn, &name)
                .await
                .map_err(redis_error)?
                .ok_or_else(|| not_found("replay", &name))?;
            Ok(HttpResponse::Ok().json(replay_view(&replay)))
        }
    }
}

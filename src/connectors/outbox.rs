//! The transactional outbox connector (`kind: postgres-outbox`): an application writes
//! its events into an outbox table in the same transaction as its data; Sluice moves
//! them to a bus (docs/connectors/sql.md).
//!
//! One poll is one transaction: take this table's advisory lock
//! (`pg_try_advisory_xact_lock`, so one replica polls at a time), `SELECT ... ORDER BY
//! id LIMIT batch FOR UPDATE SKIP LOCKED`, [`Intake::append`], `DELETE` the rows,
//! `COMMIT`. Only once Redis acknowledged the append are the rows deleted; a crash
//! before the commit rolls the transaction back, the rows are read again and the
//! dedupe window keeps their events single in the bus. The lock makes the bus order
//! the table's `id` order, across replicas: events of one aggregate arrive in the order
//! the application wrote them (more replicas give failover, not more throughput).
//!
//! A full batch is followed by the next poll at once; otherwise the connector waits
//! `poll`, or less when `notify` names a channel the application `NOTIFY`s. A lost
//! connection is opened again after [`super::pause`].

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value};
use sqlx::{Connection, PgConnection, Row};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Intake;
use crate::bus::BusError;
use crate::config::value::opt_duration;
use crate::config::Errors;
use crate::event::cloudevents::{parse_attributes, parse_structured};
use crate::event::{Data, DataKind, EncodedEvent};

/// How an event lies in the outbox table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `id bigint, event json`: the event in the CloudEvents JSON format (structured
    /// mode).
    #[default]
    Structured,
    /// `id bigint, attributes json, content_type text, data bytea`: the attributes as
    /// a JSON object, the data as bytes (binary mode).
    Binary,
}

/// `kind: postgres-outbox`: the connector's own fields.
#[derive(Debug, Clone, Deserialize)]
pub struct OutboxConfig {
    /// `postgres://USER:PASSWORD@HOST:PORT/DB`.
    pub url: String,
    /// The outbox table, `table` or `schema.table`. Default `sluice_outbox`.
    #[serde(default)]
    pub table: Option<String>,
    /// `structured` (default) or `binary`: the table's columns.
    #[serde(default)]
    pub layout: Layout,
    /// Most rows a poll takes. Default 100.
    #[serde(default)]
    pub batch: Option<u32>,
    /// Wait between polls that found less than a full batch. Default 200ms.
    #[serde(default, deserialize_with = "opt_duration")]
    pub poll: Option<Duration>,
    /// A channel to LISTEN on: a NOTIFY on it starts the next poll at once.
    #[serde(default)]
    pub notify: Option<String>,
}

/// An identifier used unquoted-safe: letters, digits, `_`, `$`, not starting with a
/// digit, at most 63 bytes.
fn valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && name.len() <= 63
}

impl OutboxConfig {
    /// Checks the fields (`at`: the connector's path, e.g. `connectors[0]`).
    pub fn check(&self, at: &str, errors: &mut Errors) {
        let scheme_ok =
            self.url.starts_with("postgres://") || self.url.starts_with("postgresql://");
        if !scheme_ok
            || <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&self.url).is_err()
        {
            errors.at(
                format!("{at}.url"),
                "must be a postgres:// URL, e.g. postgres://user:password@host:5432/db",
            );
        }
        if let Some(table) = &self.table {
            let parts: Vec<&str> = table.split('.').collect();
            if parts.len() > 2 || !parts.iter().all(|p| valid_identifier(p)) {
                errors.at(
                    format!("{at}.table"),
                    "must be `table` or `schema.table`, each a name of letters, digits, `_` or `$` (not starting with a digit)",
                );
            }
        }
        if self.batch.is_some_and(|b| !(1..=10_000).contains(&b)) {
            errors.at(format!("{at}.batch"), "must be 1 to 10000 rows");
        }
        if self
            .poll
            .is_some_and(|p| p.is_zero() || p > Duration::from_secs(3600))
        {
            errors.at(format!("{at}.poll"), "must be 1ms to 1h");
        }
        if let Some(channel) = &self.notify {
            if !valid_identifier(channel) {
                errors.at(
                    format!("{at}.notify"),
                    "must be a channel name of letters, digits, `_` or `$` (not starting with a digit)",
                );
            }
        }
    }

    fn table(&self) -> &str {
        self.table.as_deref().unwrap_or("sluice_outbox")
    }
}

/// Longest a statement may take before the connection is presumed dead.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The running connector's fixed parts.
struct Outbox {
    url: String,
    select: String,
    delete: String,
    /// The advisory lock's name (hashed by PostgreSQL's `hashtext`).
    lock: String,
    layout: Layout,
    batch: usize,
    poll: Duration,
    notify: Option<String>,
    /// `source` of rows that are no CloudEvent: the database and table, no credentials.
    source: String,
}

impl Outbox {
    fn new(config: &OutboxConfig) -> Outbox {
        let table = config.table();
        let quoted: Vec<String> = table.split('.').map(|p| format!("\"{p}\"")).collect();
        let quoted = quoted.join(".");
        let columns = match config.layout {
            Layout::Structured => "event::text AS event",
            Layout::Binary => {
                "attributes::text AS attributes, content_type::text AS content_type, data"
            }
        };
        let source = match url::Url::parse(&config.url) {
            Ok(u) => format!(
                "postgres://{}{}{}/{table}",
                u.host_str().unwrap_or("localhost"),
                u.port().map(|p| format!(":{p}")).unwrap_or_default(),
                u.path()
            ),
            Err(_) => format!("postgres://localhost/{table}"),
        };
        Outbox {
            url: config.url.clone(),
            select: format!(
                "SELECT id::bigint AS id, {columns} FROM {quoted} ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"
            ),
            delete: format!("DELETE FROM {quoted} WHERE id = ANY($1)"),
            lock: format!("sluice-outbox:{table}"),
            layout: config.layout,
            batch: config.batch.unwrap_or(100) as usize,
            poll: config.poll.unwrap_or(Duration::from_millis(200)),
            notify: config.notify.clone(),
            source,
        }
    }

    /// The event of one row, `Err(reason)` for a row that claims to be a CloudEvent
    /// but is not a valid one.
    fn event(&self, row: &sqlx::postgres::PgRow, id: i64) -> Result<EncodedEvent, String> {
        match self.layout {
            Layout::Structured => {
                let text: Option<String> = row.try_get("event").map_err(|e| e.to_string())?;
                let text = text.ok_or("the event column is NULL")?;
                let body = Bytes::from(text);
                if claims_cloudevent(&body) {
                    parse_structured(&body).map_err(|e| field_error(&e.field, &e.message))
                } else {
                    Ok(self.plain(id, None, body))
                }
            }
            Layout::Binary => {
                let attributes: Option<String> =
                    row.try_get("attributes").map_err(|e| e.to_string())?;
                let content_type: Option<String> =
                    row.try_get("content_type").map_err(|e| e.to_string())?;
                let data: Option<Vec<u8>> = row.try_get("data").map_err(|e| e.to_string())?;
                let body = Bytes::from(data.unwrap_or_default());
                let attrs: Map<String, Value> = match attributes.as_deref() {
                    None => Map::new(),
                    Some(text) => match serde_json::from_str(text) {
                        Ok(Value::Object(map)) => map,
                        _ => return Err("the attributes column is not a JSON object".into()),
                    },
                };
                if !attrs.contains_key("specversion") {
                    return Ok(self.plain(id, content_type, body));
                }
                let mut pairs = Vec::with_capacity(attrs.len());
                for (name, value) in &attrs {
                    let text = match value {
                        Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
                        Value::Number(_) | Value::Bool(_) => {
                            std::borrow::Cow::Owned(value.to_string())
                        }
                        _ => {
                            return Err(field_error(
                                name,
                                "an attribute is a string, number or boolean",
                            ))
                        }
                    };
                    pairs.push((name.as_str(), text));
                }
                parse_attributes(pairs, content_type.as_deref(), body)
                    .map_err(|e| field_error(&e.field, &e.message))
            }
        }
    }

    /// A row that is no CloudEvent, as the documented event: id = the row's id, type
    /// `sluice.postgres.outbox`, data = the bytes.
    fn plain(&self, id: i64, content_type: Option<String>, body: Bytes) -> EncodedEvent {
        let json = serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok();
        let content_type = content_type.unwrap_or_else(|| {
            if json {
                "application/json".into()
            } else {
                "application/octet-stream".into()
            }
        });
        let kind = if crate::event::is_json_media_type(&content_type) && json {
            DataKind::Json
        } else if crate::event::is_text_media_type(&content_type)
            && std::str::from_utf8(&body).is_ok()
        {
            DataKind::Text
        } else {
            DataKind::Binary
        };
        let id = id.to_string();
        let mut attrs = Map::new();
        attrs.insert("specversion".into(), "1.0".into());
        attrs.insert("id".into(), id.clone().into());
        attrs.insert("source".into(), self.source.clone().into());
        attrs.insert("type".into(), "sluice.postgres.outbox".into());
        attrs.insert("datacontenttype".into(), content_type.into());
        EncodedEvent {
            id,
            attrs: serde_json::to_vec(&attrs).expect("a JSON map always serialises"),
            data: (!body.is_empty()).then_some(Data { kind, bytes: body }),
        }
    }
}

fn field_error(field: &str, message: &str) -> String {
    if field.is_empty() {
        message.to_string()
    } else {
        format!("{field}: {message}")
    }
}

/// Whether a structured row says it is a CloudEvent: a JSON object with `specversion`.
fn claims_cloudevent(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        specversion: Option<serde::de::IgnoredAny>,
    }
    // A struct would also deserialize from an array (positionally): objects only.
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && serde_json::from_slice::<Probe>(body).is_ok_and(|p| p.specversion.is_some())
}

/// Why a poll failed.
enum PollError {
    /// The database: the connection is opened again.
    Db(sqlx::Error),
    /// The bus: the rows stay, the connection is kept.
    Bus(BusError),
}

impl From<sqlx::Error> for PollError {
    fn from(e: sqlx::Error) -> Self {
        PollError::Db(e)
    }
}

/// A statement with [`STATEMENT_TIMEOUT`].
async fn timed<T>(
    fut: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    tokio::time::timeout(STATEMENT_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| {
            Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {STATEMENT_TIMEOUT:?}"),
            )))
        })
}

/// What one poll did.
enum Polled {
    /// Another replica holds the table's lock.
    Busy,
    /// This many rows moved to the bus.
    Moved(usize),
}

impl Outbox {
    /// One transaction: lock, read, append, delete, commit.
    async fn poll_once(
        &self,
        conn: &mut PgConnection,
        intake: &mut Intake,
    ) -> Result<Polled, PollError> {
        let mut tx = timed(conn.begin()).await?;
        let locked: bool = timed(
            sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext($1))")
                .bind(&self.lock)
                .fetch_one(&mut *tx),
        )
        .await?;
        if !locked {
            timed(tx.rollback()).await?;
            return Ok(Polled::Busy);
        }
        let rows = timed(
            sqlx::query(&self.select)
                .bind(self.batch as i64)
                .fetch_all(&mut *tx),
        )
        .await?;
        if rows.is_empty() {
            timed(tx.commit()).await?;
            return Ok(Polled::Moved(0));
        }
        let mut ids = Vec::with_capacity(rows.len());
        let mut events = Vec::with_capacity(rows.len());
        let mut invalid = 0;
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            ids.push(id);
            match self.event(row, id) {
                Ok(event) => events.push(event),
                Err(reason) => {
                    invalid += 1;
                    warn!(row_id = id, %reason, "outbox row is no valid CloudEvent; deleted without appending");
                }
            }
        }
        let done = intake.append(events).await.map_err(PollError::Bus)?;
        intake.invalid(invalid);
        // Appended and acknowledged by Redis: now they may leave the table.
        timed(sqlx::query(&self.delete).bind(&ids).execute(&mut *tx)).await?;
        timed(tx.commit()).await?;
        debug!(
            rows = rows.len(),
            appended = done.appended,
            duplicates = done.duplicates,
            "outbox rows moved"
        );
        Ok(Polled::Moved(rows.len()))
    }
}

/// Consumes until `shutdown`.
pub async fn run(config: OutboxConfig, mut intake: Intake, shutdown: CancellationToken) {
    let outbox = Outbox::new(&config);
    info!(table = config.table(), "outbox connector started");
    let mut conn: Option<PgConnection> = None;
    let mut listener: Option<sqlx::postgres::PgListener> = None;
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => {
                let connected = tokio::select! {
                    c = timed(PgConnection::connect(&outbox.url)) => c,
                    _ = shutdown.cancelled() => break,
                };
                match connected {
                    Ok(c) => {
                        if failures > 0 {
                            info!("outbox database connected again");
                        }
                        conn.insert(c)
                    }
                    Err(e) => {
                        failures += 1;
                        warn!(error = %e, "connecting to the outbox database failed; retrying");
                        super::pause(failures, &shutdown).await;
                        continue;
                    }
                }
            }
        };
        // Dropping a poll cut short by shutdown rolls its transaction back: the rows stay.
        let polled = tokio::select! {
            p = outbox.poll_once(c, &mut intake) => p,
            _ = shutdown.cancelled() => break,
        };
        let wait = match polled {
            Ok(Polled::Moved(n)) => {
                failures = 0;
                if n >= outbox.batch {
                    continue;
                }
                true
            }
            Ok(Polled::Busy) => {
                failures = 0;
                true
            }
            Err(PollError::Db(e)) => {
                failures += 1;
                warn!(error = %e, "outbox poll failed; the rows stay, connecting again");
                conn = None;
                super::pause(failures, &shutdown).await;
                false
            }
            Err(PollError::Bus(e)) => {
                failures += 1;
                warn!(error = %e, "appending outbox rows failed; they stay in the table");
                super::pause(failures, &shutdown).await;
                false
            }
        };
        if wait {
            wait_for_rows(&outbox, &mut listener, &shutdown).await;
        }
    }
    info!("outbox connector stopped");
}

/// Waits `poll`, or until a NOTIFY on the `notify` channel, or shutdown.
async fn wait_for_rows(
    outbox: &Outbox,
    listener: &mut Option<sqlx::postgres::PgListener>,
    shutdown: &CancellationToken,
) {
    if let Some(channel) = &outbox.notify {
        if listener.is_none() {
            let listening = async {
                let mut l = sqlx::postgres::PgListener::connect(&outbox.url).await?;
                l.listen(channel).await?;
                Ok::<_, sqlx::Error>(l)
            };
            match timed(listening).await {
                Ok(l) => *listener = Some(l),
                Err(e) => warn!(error = %e, channel, "LISTEN failed; polling only"),
            }
        }
    }
    let sleep = tokio::time::sleep(outbox.poll);
    match listener.as_mut() {
        Some(l) => {
            tokio::select! {
                _ = sleep => {}
                got = l.recv() => {
                    if let Err(e) = got {
                        warn!(error = %e, "the LISTEN connection failed; opened again on the next wait");
                        *listener = None;
                    }
                }
                _ = shutdown.cancelled() => {}
            }
        }
        None => {
            tokio::select! {
                _ = sleep => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(layout: Layout) -> Outbox {
        Outbox::new(&OutboxConfig {
            url: "postgres://user:secret@db.example:6543/shop?sslmode=disable".into(),
            table: Some("app.outbox".into()),
            layout,
            batch: None,
            poll: None,
            notify: None,
        })
    }

    #[test]
    fn statements_quote_the_table_and_take_the_lock_per_table() {
        let o = outbox(Layout::Structured);
        assert_eq!(
            o.select,
            r#"SELECT id::bigint AS id, event::text AS event FROM "app"."outbox" ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"#
        );
        assert_eq!(o.delete, r#"DELETE FROM "app"."outbox" WHERE id = ANY($1)"#);
        assert_eq!(o.lock, "sluice-outbox:app.outbox");
        assert_eq!((o.batch, o.poll), (100, Duration::from_millis(200)));
        assert!(outbox(Layout::Binary)
            .select
            .contains("content_type::text AS content_type, data FROM"));
    }

    #[test]
    fn plain_rows_become_the_documented_event_without_credentials() {
        let o = outbox(Layout::Structured);
        let e = o
            .plain(42, None, Bytes::from_static(br#"{"a": 1}"#))
            .decode();
        assert_eq!(e.id(), "42");
        assert_eq!(
            e.attr_str("source"),
            Some("postgres://db.example:6543/shop/app.outbox")
        );
        assert_eq!(e.attr_str("type"), Some("sluice.postgres.outbox"));
        assert_eq!(e.attr_str("datacontenttype"), Some("application/json"));
        assert_eq!(e.data.as_ref().unwrap().kind, DataKind::Json);
        let e = o.plain(43, None, Bytes::from_static(&[0xff, 0])).decode();
        assert_eq!(
            e.attr_str("datacontenttype"),
            Some("application/octet-stream")
        );
        assert_eq!(e.data.unwrap().kind, DataKind::Binary);
        let e = o
            .plain(44, Some("text/plain".into()), Bytes::from_static(b"hi"))
            .decode();
        assert_eq!(e.data.unwrap().kind, DataKind::Text);
    }

    #[test]
    fn only_objects_with_specversion_claim_to_be_cloudevents() {
        assert!(claims_cloudevent(br#"{"specversion":"1.0"}"#));
        assert!(!claims_cloudevent(br#"{"id":"x","specversion":null}"#));
        assert!(!claims_cloudevent(br#"{"id":"x"}"#));
        assert!(!claims_cloudevent(br#"[1]"#));
        assert!(!claims_cloudevent(b"not json"));
    }
}

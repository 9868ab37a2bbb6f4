//! The SQL targets (`postgres`, `mysql`): each event becomes one row of a table, its
//! columns filled from the event by JSONPaths (`columns: {order_id: $.data.order.id}`,
//! the paths of transforms, over the CloudEvents JSON format of the event).
//!
//! A key column (`key`, default `id`, filled with `$.id` unless `columns` names it)
//! makes a repeat delivery write once: `mode: insert` leaves the row that is there
//! (PostgreSQL `ON CONFLICT (key) DO NOTHING`, MySQL `ON DUPLICATE KEY UPDATE key =
//! key`, not `INSERT IGNORE`, which would also turn type errors into warnings);
//! `mode: upsert` overwrites the other columns (`DO UPDATE SET` / `ON DUPLICATE KEY
//! UPDATE c = VALUES(c)`).
//!
//! Rows of concurrent deliveries share one multi-row INSERT ([`super::batch`]): up to
//! `batch` rows, waiting at most `linger` after the first. Success means the database
//! committed the statement (autocommit). A batch the database refuses for what it holds
//! (a wrong column, a type mismatch, a constraint) is tried again row by row, so each
//! event gets its own answer: those errors are not retryable (the event goes to the
//! DLQ with the database's message); connection loss, timeouts, deadlocks and
//! serialization failures are.
//!
//! PostgreSQL converts the values itself: the batch travels as one JSON array bound to
//! `json_populate_recordset(NULL::table, $1)`, so a JSON number fills an `integer`
//! column, an object a `jsonb` column, a string a `timestamptz`. MySQL gets one
//! placeholder per value, bound by JSON type (string, integer, float, boolean, NULL;
//! objects and arrays as their JSON text).
//!
//! The connection pool (`sqlx::Pool`) connects lazily on the first delivery and
//! replaces connections that broke.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::batch::{self, Batcher, Sink};
use super::{Delivered, DeliveryError, Message};
use crate::config::value::opt_duration;
use crate::config::Errors;
use crate::event::Event;
use crate::rules::select::{Document, Path};

/// Which database a `SqlTargetConfig` speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Mysql,
}

impl Dialect {
    fn kind(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
        }
    }

    /// `name` quoted as an identifier (checked to hold no quote character).
    fn quote(self, name: &str) -> String {
        match self {
            Dialect::Postgres => format!("\"{name}\""),
            Dialect::Mysql => format!("`{name}`"),
        }
    }

    /// A table name, `schema.table` or `table`, quoted part by part.
    fn quote_table(self, table: &str) -> String {
        table
            .split('.')
            .map(|part| self.quote(part))
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// What a repeat of a key does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// The first row of a key stays; later ones are dropped.
    #[default]
    Insert,
    /// The last row of a key wins: its other columns overwrite the row there.
    Upsert,
}

/// `kind: postgres` / `kind: mysql`: the target's own fields (docs/connectors/sql.md).
#[derive(Debug, Clone, Deserialize)]
pub struct SqlTargetConfig {
    /// `postgres://USER:PASSWORD@HOST:PORT/DB` or `mysql://...`.
    pub url: Option<String>,
    /// The table, `table` or `schema.table`.
    #[serde(default)]
    pub table: Option<String>,
    /// Column -> JSONPath into the event (`$.id`, `$.data.order.total`, `$` for the
    /// whole event in the CloudEvents JSON format).
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// The column that identifies a row (a primary key or unique index). Default `id`,
    /// filled with `$.id` unless `columns` names it.
    #[serde(default)]
    pub key: Option<String>,
    /// `insert` (default): a repeat of a key is dropped; `upsert`: it overwrites.
    #[serde(default)]
    pub mode: WriteMode,
    /// Most rows in one INSERT. Default 100 (MySQL: at most 65535 values a statement).
    #[serde(default)]
    pub batch: Option<usize>,
    /// How long a batch waits for more rows after its first. Default 5ms.
    #[serde(default, deserialize_with = "opt_duration")]
    pub linger: Option<Duration>,
    /// Connections of the pool, per replica. Default 4.
    #[serde(default)]
    pub max_connections: Option<u32>,
}

/// A checked SQL target.
#[derive(Debug)]
pub struct SqlSpec {
    pub dialect: Dialect,
    url: String,
    /// The quoted table name.
    table: String,
    /// (column, path), the key column first.
    columns: Vec<(String, Path)>,
    mode: WriteMode,
    batch: usize,
    linger: Duration,
    max_connections: u32,
}

/// Most placeholders in one MySQL statement.
const MYSQL_MAX_VALUES: usize = 65_535;
/// Most bytes of one batch (under MySQL's default 16 MiB `max_allowed_packet`).
const MAX_BYTES: usize = 4 * 1024 * 1024;

/// An identifier Sluice quotes without escaping: letters, digits, `_`, `$`, not
/// starting with a digit, at most 63 bytes (PostgreSQL's limit).
fn valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && name.len() <= 63
}

impl SqlTargetConfig {
    pub fn build(
        &self,
        dialect: Dialect,
        has_transform: bool,
        at: &str,
        errors: &mut Errors,
    ) -> Option<SqlSpec> {
        let kind = dialect.kind();
        let before = errors.len();
        if has_transform {
            errors.at(
                format!("{at}.transform"),
                format!("a {kind} target takes no transform: `columns` select what each row holds"),
            );
        }
        let url = match &self.url {
            None => {
                errors.at(format!("{at}.url"), format!("a {kind} target needs a url"));
                String::new()
            }
            Some(url) => {
                let parsed = match dialect {
                    Dialect::Postgres
                        if url.starts_with("postgres://") || url.starts_with("postgresql://") =>
                    {
                        sqlx::postgres::PgConnectOptions::from_str(url).map(|_| ())
                    }
                    Dialect::Mysql if url.starts_with("mysql://") => {
                        sqlx::mysql::MySqlConnectOptions::from_str(url).map(|_| ())
                    }
                    _ => Err(sqlx::Error::Configuration("wrong scheme".into())),
                };
                if parsed.is_err() {
                    errors.at(
                        format!("{at}.url"),
                        match dialect {
                            Dialect::Postgres => "must be a postgres:// URL, e.g. postgres://user:password@host:5432/db",
                            Dialect::Mysql => "must be a mysql:// URL, e.g. mysql://user:password@host:3306/db",
                        },
                    );
                }
                url.clone()
            }
        };
        let table = match &self.table {
            None => {
                errors.at(
                    format!("{at}.table"),
                    format!("a {kind} target needs a table"),
                );
                String::new()
            }
            Some(t) => {
                let parts: Vec<&str> = t.split('.').collect();
                if parts.len() > 2 || !parts.iter().all(|p| valid_identifier(p)) {
                    errors.at(
                        format!("{at}.table"),
                        "must be `table` or `schema.table`, each a name of letters, digits, `_` or `$` (not starting with a digit)",
                    );
                }
                dialect.quote_table(t)
            }
        };
        let key = self.key.as_deref().unwrap_or("id");
        if !valid_identifier(key) {
            errors.at(
                format!("{at}.key"),
                "must be a column name of letters, digits, `_` or `$` (not starting with a digit)",
            );
        }
        let mut columns = Vec::with_capacity(self.columns.len() + 1);
        if !self.columns.contains_key(key) {
            columns.push((
                dialect.quote(key),
                Path::new("$.id").expect("a valid JSONPath"),
            ));
        }
        for (column, path) in &self.columns {
            if !valid_identifier(column) {
                errors.at(
                    format!("{at}.columns.{column}"),
                    "a column name is letters, digits, `_` or `$` (not starting with a digit)",
                );
                continue;
            }
            match Path::new(path) {
                Ok(p) if column == key => columns.insert(0, (dialect.quote(column), p)),
                Ok(p) => columns.push((dialect.quote(column), p)),
                Err(e) => errors.at(format!("{at}.columns.{column}"), e),
            }
        }
        let batch = self.batch.unwrap_or(100);
        if !(1..=10_000).contains(&batch) {
            errors.at(format!("{at}.batch"), "must be 1 to 10000 rows");
        }
        if self.max_connections == Some(0) {
            errors.at(format!("{at}.max_connections"), "must be at least 1");
        }
        if errors.len() > before {
            return None;
        }
        let batch = match dialect {
            Dialect::Mysql => batch.min(MYSQL_MAX_VALUES / columns.len().max(1)),
            Dialect::Postgres => batch,
        };
        Some(SqlSpec {
            dialect,
            url,
            table,
            columns,
            mode: self.mode,
            batch,
            linger: self.linger.unwrap_or(Duration::from_millis(5)),
            max_connections: self.max_connections.unwrap_or(4),
        })
    }
}

/// One event's row: the key's JSON text and each column's value as JSON text
/// (`null` where the path selects nothing), in the spec's column order.
#[derive(Debug)]
struct Row {
    key: String,
    values: Vec<String>,
}

impl Row {
    fn size(&self) -> usize {
        self.values.iter().map(|v| v.len() + 8).sum()
    }
}

/// A started SQL target.
#[derive(Debug)]
pub struct SqlTarget {
    spec: std::sync::Arc<SqlSpec>,
    gateway_id: String,
    batcher: Batcher<Row>,
}

#[derive(Debug, Clone)]
enum Pool {
    Postgres(sqlx::PgPool),
    Mysql(sqlx::MySqlPool),
}

/// The batcher's sink: runs the INSERT of a batch.
struct Writer {
    spec: std::sync::Arc<SqlSpec>,
    pool: Pool,
    timeout: Duration,
    /// The statement of a full batch is built once per size; these are the parts.
    insert_head: String,
    conflict: String,
}

impl SqlTarget {
    pub fn new(
        spec: SqlSpec,
        timeout: Duration,
        concurrency: usize,
        gateway_id: &str,
    ) -> anyhow::Result<SqlTarget> {
        let connections = spec.max_connections.min(concurrency.max(1) as u32);
        let pool = match spec.dialect {
            Dialect::Postgres => Pool::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(connections)
                    .acquire_timeout(timeout)
                    .connect_lazy(&spec.url)?,
            ),
            Dialect::Mysql => Pool::Mysql(
                sqlx::mysql::MySqlPoolOptions::new()
                    .max_connections(connections)
                    .acquire_timeout(timeout)
                    .connect_lazy(&spec.url)?,
            ),
        };
        let spec = std::sync::Arc::new(spec);
        let (insert_head, conflict) = Writer::parts(&spec);
        let writer = Writer {
            spec: spec.clone(),
            pool,
            timeout,
            insert_head,
            conflict,
        };
        let batcher = Batcher::spawn(
            writer,
            batch::Limits {
                max_entries: spec.batch,
                max_bytes: MAX_BYTES,
                linger: spec.linger,
            },
        );
        Ok(SqlTarget {
            spec,
            gateway_id: gateway_id.to_string(),
            batcher,
        })
    }

    /// The row of `event`: each column's selection (this gateway written into the
    /// event's `sluicepath` first, so a `$` column carries it).
    fn row(&self, event: &Event) -> Row {
        let stamped = Message::stamped(event, &self.gateway_id);
        let doc = Document::new(&stamped);
        let values: Vec<String> = self
            .spec
            .columns
            .iter()
            .map(|(_, path)| {
                path.select(&doc)
                    .map(|v| v.into_owned())
                    .unwrap_or_else(|| "null".to_string())
            })
            .collect();
        Row {
            key: values[0].clone(),
            values,
        }
    }

    /// Writes the event's row; Ok once the database committed it (or had the key).
    pub async fn deliver(&self, event: &Event) -> Result<Delivered, DeliveryError> {
        let row = self.row(event);
        let size = row.size();
        self.batcher.submit(row, size).await?;
        Ok(Delivered::default())
    }
}

impl Sink for Writer {
    type Item = Row;

    async fn send(&self, rows: Vec<Row>) -> Vec<Result<(), DeliveryError>> {
        // One row per key in a statement (PostgreSQL refuses to update a row twice in
        // one command); repeats get the answer of the first.
        let mut first_of: HashMap<&str, usize> = HashMap::new();
        let mut unique: Vec<&Row> = Vec::with_capacity(rows.len());
        let slot: Vec<usize> = rows
            .iter()
            .map(|row| {
                *first_of.entry(row.key.as_str()).or_insert_with(|| {
                    unique.push(row);
                    unique.len() - 1
                })
            })
            .collect();
        let results = match self.write(&unique).await {
            Ok(()) => vec![Ok(()); unique.len()],
            Err(e) if e.retryable || unique.len() == 1 => vec![Err(e); unique.len()],
            Err(_) => {
                // Something in the batch is refused: find out which, row by row.
                let mut each = Vec::with_capacity(unique.len());
                for row in &unique {
                    each.push(self.write(std::slice::from_ref(row)).await);
                }
                each
            }
        };
        slot.into_iter()
            .map(|i| results[i].clone().map_err(SqlError::into_delivery))
            .collect()
    }
}

/// A failed statement: the database's message and whether to try again.
#[derive(Debug, Clone)]
struct SqlError {
    message: String,
    retryable: bool,
}

impl SqlError {
    fn into_delivery(self) -> DeliveryError {
        DeliveryError::Failed {
            message: self.message,
            retryable: self.retryable,
        }
    }

    fn of(e: sqlx::Error) -> SqlError {
        match &e {
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                let number = db
                    .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                    .map(|m| m.number());
                // SQLSTATE classes 08 (connection), 40 (rollback: deadlock,
                // serialization), 53 (resources), 57 (operator: shutdown, cancel), 58
                // (system); 55P03 lock not available. MySQL numbers: lock wait timeout,
                // deadlock, too many connections, shutdown, connection killed.
                let transient = ["08", "40", "53", "57", "58"]
                    .iter()
                    .any(|class| code.starts_with(class))
                    || code == "55P03"
                    || matches!(number, Some(1040 | 1053 | 1205 | 1213 | 1927 | 2006 | 2013));
                SqlError {
                    message: match code.as_str() {
                        "" => db.message().to_string(),
                        code => format!("{} (SQLSTATE {code})", db.message()),
                    },
                    retryable: transient,
                }
            }
            // What the rows hold cannot be encoded: no attempt can succeed.
            sqlx::Error::Encode(_)
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::TypeNotFound { .. } => SqlError {
                message: e.to_string(),
                retryable: false,
            },
            // I/O, TLS, protocol, pool timeouts and closes: the connection.
            _ => SqlError {
                message: e.to_string(),
                retryable: true,
            },
        }
    }
}

impl Writer {
    /// The INSERT of a batch but its values, and its conflict clause.
    fn parts(spec: &SqlSpec) -> (String, String) {
        let names: Vec<&str> = spec.columns.iter().map(|(c, _)| c.as_str()).collect();
        let key = names[0];
        let others = &names[1..];
        match spec.dialect {
            Dialect::Postgres => {
                let list = names.join(", ");
                let head = format!(
                    "INSERT INTO {table} ({list}) SELECT {list} FROM json_populate_recordset(NULL::{table}, $1::json)",
                    table = spec.table
                );
                let conflict = if spec.mode == WriteMode::Upsert && !others.is_empty() {
                    let set: Vec<String> = others
                        .iter()
                        .map(|c| format!("{c} = EXCLUDED.{c}"))
                        .collect();
                    format!(" ON CONFLICT ({key}) DO UPDATE SET {}", set.join(", "))
                } else {
                    format!(" ON CONFLICT ({key}) DO NOTHING")
                };
                (head, conflict)
            }
            Dialect::Mysql => {
                let head = format!("INSERT INTO {} ({}) VALUES ", spec.table, names.join(", "));
                let conflict = if spec.mode == WriteMode::Upsert && !others.is_empty() {
                    let set: Vec<String> = others
                        .iter()
                        .map(|c| format!("{c} = VALUES({c})"))
                        .collect();
                    format!(" ON DUPLICATE KEY UPDATE {}", set.join(", "))
                } else {
                    format!(" ON DUPLICATE KEY UPDATE {key} = {key}")
                };
                (head, conflict)
            }
        }
    }

    /// One INSERT of `rows` (autocommit: Ok means committed).
    async fn write(&self, rows: &[&Row]) -> Result<(), SqlError> {
        let run = async {
            match &self.pool {
                Pool::Postgres(pool) => {
                    let names = &self.spec.columns;
                    let mut json =
                        String::with_capacity(rows.iter().map(|r| r.size()).sum::<usize>() + 2);
                    json.push('[');
                    for (i, row) in rows.iter().enumerate() {
                        if i > 0 {
                            json.push(',');
                        }
                        json.push('{');
                        for (j, ((column, _), value)) in names.iter().zip(&row.values).enumerate() {
                            if j > 0 {
                                json.push(',');
                            }
                            // The quoted identifier without its quotes is the record's
                            // field name.
                            json.push_str(
                                &serde_json::to_string(column.trim_matches('"')).expect("JSON"),
                            );
                            json.push(':');
                            json.push_str(value);
                        }
                        json.push('}');
                    }
                    json.push(']');
                    let sql = format!("{}{}", self.insert_head, self.conflict);
                    sqlx::query(&sql).bind(json).execute(pool).await.map(|_| ())
                }
                Pool::Mysql(pool) => {
                    let width = self.spec.columns.len();
                    let tuple = format!("({})", vec!["?"; width].join(", "));
                    let sql = format!(
                        "{}{}{}",
                        self.insert_head,
                        vec![tuple.as_str(); rows.len()].join(", "),
                        self.conflict
                    );
                    let mut query = sqlx::query(&sql);
                    for row in rows {
                        for value in &row.values {
                            query = match serde_json::from_str::<Value>(value) {
                                Ok(Value::Null) | Err(_) => query.bind(None::<String>),
                                Ok(Value::String(s)) => query.bind(s),
                                Ok(Value::Bool(b)) => query.bind(b),
                                Ok(Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
                                    (Some(i), _) => query.bind(i),
                                    (None, Some(u)) => query.bind(u),
                                    // Decimals as their text: MySQL converts exactly.
                                    _ => query.bind(n.to_string()),
                                },
                                Ok(other) => query.bind(other.to_string()),
                            };
                        }
                    }
                    query.execute(pool).await.map(|_| ())
                }
            }
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(result) => result.map_err(SqlError::of),
            Err(_) => Err(SqlError {
                message: format!("the statement took longer than {:?}", self.timeout),
                retryable: true,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, mode: WriteMode) -> SqlTargetConfig {
        SqlTargetConfig {
            url: Some(url.into()),
            table: Some("app.rows".into()),
            columns: [("total".to_string(), "$.data.total".to_string())].into(),
            key: None,
            mode,
            batch: None,
            linger: None,
            max_connections: None,
        }
    }

    fn statements(dialect: Dialect, url: &str, mode: WriteMode) -> (String, String) {
        let mut errors = Errors::default();
        let spec = config(url, mode)
            .build(dialect, false, "t", &mut errors)
            .expect("valid");
        Writer::parts(&spec)
    }

    #[test]
    fn postgres_statements() {
        let (head, conflict) =
            statements(Dialect::Postgres, "postgres://u@h/db", WriteMode::Insert);
        assert_eq!(
            head,
            r#"INSERT INTO "app"."rows" ("id", "total") SELECT "id", "total" FROM json_populate_recordset(NULL::"app"."rows", $1::json)"#
        );
        assert_eq!(conflict, r#" ON CONFLICT ("id") DO NOTHING"#);
        let (_, conflict) = statements(Dialect::Postgres, "postgres://u@h/db", WriteMode::Upsert);
        assert_eq!(
            conflict,
            r#" ON CONFLICT ("id") DO UPDATE SET "total" = EXCLUDED."total""#
        );
    }

    #[test]
    fn mysql_statements() {
        let (head, conflict) = statements(Dialect::Mysql, "mysql://u@h/db", WriteMode::Insert);
        assert_eq!(head, "INSERT INTO `app`.`rows` (`id`, `total`) VALUES ");
        assert_eq!(conflict, " ON DUPLICATE KEY UPDATE `id` = `id`");
        let (_, conflict) = statements(Dialect::Mysql, "mysql://u@h/db", WriteMode::Upsert);
        assert_eq!(
            conflict,
            " ON DUPLICATE KEY UPDATE `total` = VALUES(`total`)"
        );
    }

    #[test]
    fn a_transform_and_bad_names_are_refused() {
        let mut errors = Errors::default();
        let mut c = config("mysql://u@h/db", WriteMode::Insert);
        c.columns.insert("no good".into(), "$.id".into());
        assert!(c.build(Dialect::Postgres, true, "t", &mut errors).is_none());
        let text: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
        let text = text.join("\n");
        assert!(
            text.contains("t.transform: a postgres target takes no transform"),
            "{text}"
        );
        assert!(text.contains("t.url: must be a postgres:// URL"), "{text}");
        assert!(text.contains("t.columns.no good: a column name"), "{text}");
    }
}

//! Leases: one replica at a time holds a named lease in Redis (`SET NX PX`), renews it
//! while it works, and stops when it cannot. Ordered delivery needs one reader of a
//! stream at a time: the router of a bus that feeds ordered targets, and the dispatcher
//! of an ordered target, run only while they hold their lease.

use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::within;

/// Takes the lease if it is free or already ours; refreshes its expiry either way.
static ACQUIRE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
",
    )
});

/// Extends the lease if it is still ours.
static RENEW: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
",
    )
});

/// Deletes the lease if it is still ours.
static RELEASE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// A lease held by this replica. Its `lost` token is cancelled when the lease may
/// pass to another replica (not renewed within half its time to live: at least half of
/// it is left when `lost` fires), or on shutdown. The holder must stop reading and
/// delivering then; during a graceful shutdown the lease is still renewed until
/// [`Held::release`], so nobody takes over while in-flight work drains.
pub struct Held {
    key: String,
    owner: String,
    pub lost: CancellationToken,
    /// Stops the renewals (on release).
    done: CancellationToken,
    renewer: JoinHandle<()>,
    conn: ConnectionManager,
}

impl Held {
    /// Gives the lease up (if still held) so another replica can take it at once.
    pub async fn release(mut self) {
        self.done.cancel();
        self.renewer.abort();
        let _ = within(
            RELEASE
                .key(&self.key)
                .arg(&self.owner)
                .invoke_async::<i64>(&mut self.conn),
        )
        .await;
    }
}

impl Drop for Held {
    /// A holder that ends without `release` (a panic, an aborted task) stops renewing:
    /// the lease then expires instead of being held forever.
    fn drop(&mut self) {
        self.lost.cancel();
        self.done.cancel();
        self.renewer.abort();
    }
}

/// Waits until this replica (`owner`) holds the lease `key`, trying every third of
/// `ttl`; `None` on shutdown.
///
/// A lease found free may have been lost by a replica that does not know it yet (Redis
/// restarted without persistence and forgot it): the new holder waits half of `ttl`
/// before it starts, by when such a replica has noticed and stopped.
pub async fn acquire(
    conn: &ConnectionManager,
    key: &str,
    owner: &str,
    ttl: Duration,
    shutdown: &CancellationToken,
) -> Option<Held> {
    take(conn, key, owner, ttl, shutdown, true).await
}

/// [`acquire`] without the wait after taking a free lease: for work where two holders
/// at once (after a Redis restart that forgot the lease) cost a repeat, not an order
/// violation: archivers and replays, which are at-least-once anyway and should start
/// as soon as they are made.
pub async fn acquire_at_once(
    conn: &ConnectionManager,
    key: &str,
    owner: &str,
    ttl: Duration,
    shutdown: &CancellationToken,
) -> Option<Held> {
    take(conn, key, owner, ttl, shutdown, false).await
}

async fn take(
    conn: &ConnectionManager,
    key: &str,
    owner: &str,
    ttl: Duration,
    shutdown: &CancellationToken,
    grace: bool,
) -> Option<Held> {
    let ttl_ms = ttl.as_millis().max(1) as u64;
    let every = ttl / 3;
    let mut c = conn.clone();
    loop {
        match within(
            ACQUIRE
                .key(key)
                .arg(owner)
                .arg(ttl_ms)
                .invoke_async::<i64>(&mut c),
        )
        .await
        {
            Ok(1) => break,
            Ok(_) => {}
            Err(e) => warn!(lease = key, error = %e, "cannot take the lease; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return None,
        }
    }
    let lost = shutdown.child_token();
    let done = CancellationToken::new();
    let renewer = tokio::spawn(renew(
        conn.clone(),
        key.to_string(),
        owner.to_string(),
        ttl,
        lost.clone(),
        done.clone(),
    ));
    let held = Held {
        key: key.to_string(),
        owner: owner.to_string(),
        lost,
        done,
        renewer,
        conn: conn.clone(),
    };
    if grace {
        tokio::select! {
            _ = tokio::time::sleep(ttl / 2) => {}
            _ = held.lost.cancelled() => {}
        }
    }
    info!(lease = key, "lease taken");
    Some(held)
}

/// Renews the lease every sixth of `ttl` until `done`; cancels `lost` when it is not
/// ours any more, or when it was not renewed for half of `ttl`.
async fn renew(
    mut conn: ConnectionManager,
    key: String,
    owner: String,
    ttl: Duration,
    lost: CancellationToken,
    done: CancellationToken,
) {
    let ttl_ms = ttl.as_millis().max(1) as u64;
    let mut renewed = Instant::now();
    loop {
        let deadline = renewed + ttl / 2;
        tokio::select! {
            _ = tokio::time::sleep(ttl / 6) => {}
            _ = done.cancelled() => return,
        }
        let renewal = tokio::time::timeout_at(
            deadline,
            RENEW
                .key(&key)
                .arg(&owner)
                .arg(ttl_ms)
                .invoke_async::<i64>(&mut conn),
        )
        .await;
        match renewal {
            Ok(Ok(1)) => renewed = Instant::now(),
            Ok(Ok(_)) => {
                warn!(lease = %key, "lease taken by another replica; stopping");
                lost.cancel();
                return;
            }
            _ if Instant::now() >= deadline => {
                warn!(lease = %key, "cannot renew the lease; stopping");
                lost.cancel();
                return;
            }
            // A failed renewal with time left: try again at the next tick.
            _ => {}
        }
    }
}

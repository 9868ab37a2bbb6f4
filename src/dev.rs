//! `sluice dev`: find a Redis to use, or start a private one.
//!
//! Order: `REDIS_URL` if set; else `127.0.0.1:6379` if it answers PING; else a
//! `redis-server` from PATH on a free port with its data under `./.sluice/`; else a
//! clear message on how to get Redis.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A Redis the dev command found or started. Dropping it stops a started server.
pub struct DevRedis {
    pub url: String,
    child: Option<Child>,
}

impl Drop for DevRedis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Finds or starts a Redis, as described in the module docs.
pub async fn discover_redis() -> anyhow::Result<DevRedis> {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return Ok(DevRedis { url, child: None });
    }
    let default = "redis://127.0.0.1:6379";
    if ping(default).await {
        return Ok(DevRedis {
            url: default.into(),
            child: None,
        });
    }
    let dir = Path::new(".sluice");
    std::fs::create_dir_all(dir).context("creating ./.sluice")?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let spawned = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--appendonly",
            "yes",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(dir.canonicalize()?)
        .stdout(Stdio::null())
        .spawn();
    let child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no Redis found: REDIS_URL is not set, nothing answers on 127.0.0.1:6379 and \
             redis-server is not on PATH. Install it (e.g. `apt-get install redis-server` or \
             `brew install redis`), or set REDIS_URL=redis://host:port"
        ),
        Err(e) => return Err(e).context("starting redis-server"),
    };
    let redis = DevRedis {
        url: format!("redis://127.0.0.1:{port}"),
        child: Some(child),
    };
    let started = Instant::now();
    while !ping(&redis.url).await {
        if started.elapsed() > Duration::from_secs(10) {
            bail!("redis-server started on port {port} but does not answer");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!(url = %redis.url, data = ".sluice/", "started a private redis-server");
    Ok(redis)
}

async fn ping(url: &str) -> bool {
    let Ok(client) = crate::bus::redis_url::client(url) else {
        return false;
    };
    let attempt = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), attempt).await,
        Ok(Ok(_))
    )
}

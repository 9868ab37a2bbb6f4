//! Test harness: a private redis-server per test, the real `sluice` binary as a child
//! process, and a local HTTP receiver that records what targets get.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// Runs the `sluice` CLI; returns (exit code, stdout, stderr).
pub fn sluice(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A port nothing listens on, handed out once per test process. Ports come from below
/// the kernel's ephemeral range (32768+), so the port cannot be taken between this check
/// and the bind by an outgoing connection's local port, nor by another test's `:0` bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Each test binary starts at its own place, so two binaries run at once rarely meet.
    let start = (std::process::id() % 400) * 30;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (start + n) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// A redis-server of this test's own (or `REDIS_URL` when redis-server is missing, in
/// which case tests that must stop Redis are skipped by `can_restart`).
pub struct Redis {
    pub url: String,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// `appendfsync` policy: `always` unless started with [`Redis::start_with_fsync`].
    fsync: &'static str,
}

impl Redis {
    pub fn start() -> Redis {
        Self::start_with_fsync("always")
    }

    /// A redis-server with `appendonly yes` and `appendfsync POLICY` (always, everysec).
    pub fn start_with_fsync(fsync: &'static str) -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut redis = Redis {
            url: format!("redis://127.0.0.1:{port}"),
            port,
            dir,
            child: None,
            fsync,
        };
        if !redis.spawn(true) {
            let url =
                std::env::var("REDIS_URL").expect("neither redis-server on PATH nor REDIS_URL set");
            redis.url = url;
        }
        redis
    }

    /// Starts redis-server on this Redis's port and data dir; false if not installed.
    /// Another test may take the port between `free_port` and the bind (then the server
    /// that answers is not ours): with `may_move`, another port is tried.
    fn spawn(&mut self, may_move: bool) -> bool {
        for _ in 0..10 {
            match self.spawn_once() {
                None => return false,
                Some(true) => return true,
                Some(false) if may_move => {
                    self.port = free_port();
                    self.url = format!("redis://127.0.0.1:{}", self.port);
                }
                Some(false) => panic!("port {} was taken by another process", self.port),
            }
        }
        panic!("no free port for redis-server");
    }

    /// None: not installed; Some(false): the server answering on the port is not ours.
    fn spawn_once(&mut self) -> Option<bool> {
        // appendfsync always: a kill -9 of Redis loses nothing it acknowledged.
        // everysec: up to ~1 s of acknowledged writes on a kill -9 (not on SHUTDOWN).
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", self.fsync])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn();
        match child {
            Ok(mut child) => {
                let start = Instant::now();
                while self.ping().is_err() {
                    if child.try_wait().ok().flatten().is_some() {
                        return Some(false); // exited: could not bind
                    }
                    assert!(
                        start.elapsed() < Duration::from_secs(10),
                        "redis-server did not start"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                if self.server_pid() != Some(child.id()) {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Some(false);
                }
                self.child = Some(child);
                Some(true)
            }
            Err(_) => None,
        }
    }

    /// The process id of the server answering on this Redis's port.
    fn server_pid(&self) -> Option<u32> {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query(&mut self.conn())
            .ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|pid| pid.trim().parse().ok())
    }

    pub fn can_restart(&self) -> bool {
        self.child.is_some()
    }

    fn ping(&self) -> redis::RedisResult<String> {
        let client = redis::Client::open(self.url.as_str())?;
        let mut conn = client.get_connection_with_timeout(Duration::from_millis(200))?;
        redis::cmd("PING").query(&mut conn)
    }

    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Freezes the server (SIGSTOP) for `d`, then lets it go on (SIGCONT): a stall, as
    /// under a long fork or a saturated host. Commands sent meanwhile wait in the socket
    /// buffers and run when it resumes.
    pub async fn stall(&self, d: Duration) {
        let pid = self
            .child
            .as_ref()
            .expect("our own redis-server")
            .id()
            .to_string();
        Command::new("kill").args(["-STOP", &pid]).status().unwrap();
        tokio::time::sleep(d).await;
        Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    }

    /// Stops the server the graceful way (`SHUTDOWN`: the AOF is flushed and fsynced).
    pub fn shutdown(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = redis::cmd("SHUTDOWN").query::<()>(&mut self.conn());
            child.wait().unwrap();
        }
    }

    /// Starts the server again on the same port with the same data.
    pub fn restart(&mut self) {
        self.kill();
        assert!(self.spawn(false));
    }

    pub fn xlen(&self, key: &str) -> usize {
        redis::cmd("XLEN").arg(key).query(&mut self.conn()).unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `sluice serve` binary, running a configuration.
pub struct Gateway {
    pub port: u16,
    config: PathBuf,
    log: PathBuf,
    redis_url: String,
    /// Extra environment of the process.
    env: Vec<(String, String)>,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts `sluice serve` with `config` (YAML) and waits until it is ready.
    pub async fn start(redis: &Redis, config: &str) -> Gateway {
        Self::start_on(redis, config, free_port()).await
    }

    /// [`Gateway::start`] on a given port (for configs that must name it beforehand).
    pub async fn start_on(redis: &Redis, config: &str, port: u16) -> Gateway {
        Self::start_full(redis, config, port, &[]).await
    }

    /// [`Gateway::start`] with extra environment variables.
    pub async fn start_with_env(redis: &Redis, config: &str, env: &[(&str, &str)]) -> Gateway {
        Self::start_full(redis, config, free_port(), env).await
    }

    async fn start_full(redis: &Redis, config: &str, port: u16, env: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.yaml");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(config.as_bytes())
            .unwrap();
        let mut gw = Gateway {
            port,
            config: path,
            log: dir.path().join("sluice.log"),
            redis_url: redis.url.clone(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
            _dir: dir,
        };
        gw.spawn().await;
        gw
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--redis", &self.redis_url])
            .env("RUST_LOG", "info,sluice=debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let url = self.url("/healthz");
        let client = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Ok(r) = client.get(&url).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("gateway exited with {status}:\n{}", self.logs());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "gateway did not start:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The configuration file the gateway was started with (rewrite it, then
    /// [`Gateway::hangup`]).
    pub fn config_path(&self) -> &std::path::Path {
        &self.config
    }

    /// SIGHUP: the gateway reads its file again.
    pub fn hangup(&self) {
        let pid = self.pid().expect("running");
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits until `/readyz` answers 200 (the configuration store is read and in force).
    pub async fn ready(&self) {
        let client = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Ok(r) = client.get(self.url("/readyz")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "gateway not ready:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The process id of the running gateway.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: no graceful anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        child.wait().unwrap()
    }

    /// Starts the gateway again (same config, port and Redis).
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("---- gateway log ----\n{}", self.logs());
        }
    }
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A status and extra response headers.
type ScriptedAnswer = (u16, Vec<(String, String)>);

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Every request, whatever the answer: (status answered, when, headers, body).
    attempts: Mutex<Vec<(u16, Received)>>,
    /// Answers to give first, in order (status, extra headers), before `status`.
    script: Mutex<std::collections::VecDeque<ScriptedAnswer>>,
    /// Status to answer with (default 200).
    status: Mutex<Option<u16>>,
    /// Status to answer with for a given `ce-id`, before `status`.
    by_id: Mutex<HashMap<String, u16>>,
    /// `(status, n)`: every n-th request is answered `status`, before `by_id`.
    every: Mutex<Option<(u16, usize)>>,
    requests: std::sync::atomic::AtomicUsize,
    /// How long each answer takes.
    latency: Mutex<Duration>,
}

/// A local HTTP server standing in for a target; it records every request.
pub struct Receiver {
    pub port: u16,
    state: Arc<ReceiverState>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    pub async fn start() -> Receiver {
        Self::start_on(free_port()).await
    }

    pub async fn start_on(port: u16) -> Receiver {
        let state = Arc::new(ReceiverState::default());
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(record))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", port))
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver {
            port,
            state,
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.state.received.lock().unwrap().len()
    }

    /// The `ce-id` of every request answered 2xx, in arrival order (cheaper than
    /// [`Receiver::received`] for thousands of deliveries).
    pub fn ce_ids(&self) -> Vec<String> {
        self.state
            .received
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| r.header("ce-id").map(str::to_string))
            .collect()
    }

    /// Every request with the status it was answered with.
    pub fn attempts(&self) -> Vec<(u16, Received)> {
        self.state.attempts.lock().unwrap().clone()
    }

    /// Answers the next request with `status` and `headers` (queued; then as before).
    pub fn answer_once(&self, status: u16, headers: &[(&str, &str)]) {
        self.state.script.lock().unwrap().push_back((
            status,
            headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        ));
    }

    /// Makes the receiver answer every request carrying `ce-id: id` with `status`.
    pub fn answer_id_with(&self, id: &str, status: u16) {
        self.state
            .by_id
            .lock()
            .unwrap()
            .insert(id.to_string(), status);
    }

    /// Makes the receiver answer every `n`-th request with `status` (a flaky target).
    pub fn answer_every(&self, n: usize, status: u16) {
        *self.state.every.lock().unwrap() = Some((status, n));
    }

    /// Makes every answer take `latency` (requests are still served concurrently).
    pub fn set_latency(&self, latency: Duration) {
        *self.state.latency.lock().unwrap() = latency;
    }

    /// Makes the receiver answer every request with `status`.
    pub fn answer_with(&self, status: u16) {
        *self.state.status.lock().unwrap() = Some(status);
    }

    /// Undoes [`Receiver::answer_with`]: 200 again.
    pub fn answer_normally(&self) {
        *self.state.status.lock().unwrap() = None;
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }

    /// Stops the server (its port then refuses connections) but keeps what it recorded:
    /// a request in progress may still be recorded (and answered) after this returns,
    /// since the server's worker thread finishes its current step on its own.
    pub async fn stop_listening(&self) {
        self.handle.stop(false).await;
    }
}

async fn record(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<ReceiverState>,
) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let latency = *state.latency.lock().unwrap();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let n = state
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    let every = *state.every.lock().unwrap();
    let (status, extra) = state.script.lock().unwrap().pop_front().unwrap_or_else(|| {
        if let Some((status, every)) = every {
            if n.is_multiple_of(every) {
                return (status, vec![]);
            }
        }
        let by_id = req
            .headers()
            .get("ce-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|id| state.by_id.lock().unwrap().get(id).copied());
        let status = by_id.unwrap_or_else(|| state.status.lock().unwrap().unwrap_or(200));
        (status, vec![])
    });
    let received = Received {
        method: req.method().to_string(),
        path: req.path().to_string(),
        query: req.query_string().to_string(),
        headers,
        body: body.to_vec(),
        at: Instant::now(),
    };
    state
        .attempts
        .lock()
        .unwrap()
        .push((status, received.clone()));
    if (200..300).contains(&status) {
        state.received.lock().unwrap().push(received);
    }
    let mut response = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    for (name, value) in extra {
        response.insert_header((name, value));
    }
    response.finish()
}

/// A structured-mode CloudEvent with the given id, type and JSON data (raw text).
pub fn structured_event(id: &str, ty: &str, data: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"/test","type":"{ty}","datacontenttype":"application/json","data":{data}}}"#
    )
}

/// Posts a structured-mode event; returns the status code.
pub async fn post_structured(gw: &Gateway, bus: &str, body: &str) -> u16 {
    reqwest::Client::new()
        .post(gw.url(&format!("/buses/{bus}/events")))
        .header("content-type", "application/cloudevents+json")
        .body(body.to_string())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Posts `count` structured events with ids `{prefix}{i}` as one batch; returns the status.
pub async fn post_batch(gw: &Gateway, bus: &str, prefix: &str, count: usize) -> u16 {
    let batch = format!(
        "[{}]",
        (0..count)
            .map(|i| structured_event(&format!("{prefix}{i}"), "t", "{}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    reqwest::Client::new()
        .post(gw.url(&format!("/buses/{bus}/events")))
        .header("content-type", "application/cloudevents-batch+json")
        .body(batch)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Whether python3 can `import module` (a client library a test drives Sluice with);
/// under CI (`CI` set) it must, else a loud SKIPPED line.
pub fn have_python(module: &str, package: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{package} is missing under CI (pip install {package})"
        );
        eprintln!("\n*** SKIPPED: {package} is not installed; pip install {package} ***\n");
    }
    ok
}

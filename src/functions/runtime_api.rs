//! One function instance: its process and its AWS Lambda Runtime API listener.
//!
//! Every instance gets a loopback listener of its own, so the host always knows which
//! process holds which invocation (to kill the right one on a timeout), and
//! `AWS_LAMBDA_RUNTIME_API` is a plain `127.0.0.1:PORT`, as every runtime client
//! expects. The endpoints are those of the Lambda Runtime API (2018-06-01):
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /2018-06-01/runtime/invocation/next` | waits for an invocation: 200, the payload, `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn`, `-Trace-Id` |
//! | `POST /2018-06-01/runtime/invocation/{id}/response` | 202; the invocation succeeds with the body |
//! | `POST /2018-06-01/runtime/invocation/{id}/error` | 202; the invocation fails with the body (`{"errorType", "errorMessage"}`) |
//! | `POST /2018-06-01/runtime/init/error` | 202; the instance is stopped, counted as a start failure |
//!
//! A process runs with a cleared environment (`PATH`, the Lambda variables and the
//! function's `env` only, so Sluice's secrets do not leak into functions), in a process
//! group of its own (a kill reaches whatever it started), and with a parent-death
//! signal, so it dies with Sluice even on a SIGKILL.

use std::convert::Infallible;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{Function, InvokeError, InvokeResult, MAX_PAYLOAD};

const PREFIX: &str = "/2018-06-01/runtime/";

/// The invocation an instance holds.
struct Running {
    request_id: String,
    result: oneshot::Sender<InvokeResult>,
    /// Cancelled when the invocation ends, so its watchdog ends with it.
    _done: tokio_util::sync::DropGuard,
}

/// What the Runtime API handlers of one instance share.
struct Instance {
    function: Arc<Function>,
    id: u64,
    /// Cancelled to stop the instance (timeout, init error, host shutdown).
    kill: CancellationToken,
    /// The instance has asked for work at least once.
    ready: AtomicBool,
    /// The instance reported an init error.
    init_failed: AtomicBool,
    current: Mutex<Option<Running>>,
}

impl Instance {
    /// Takes the running invocation if it is `request_id`.
    fn take(&self, request_id: &str) -> Option<Running> {
        let mut current = self.current.lock().expect("instance lock");
        if current.as_ref().is_some_and(|r| r.request_id == request_id) {
            current.take()
        } else {
            None
        }
    }
}

/// Counts an instance as idle while its `next` request waits.
struct Idle<'a>(&'a Function);

impl<'a> Idle<'a> {
    fn new(function: &'a Function) -> Idle<'a> {
        function.set_idle(true);
        Idle(function)
    }
}

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.0.set_idle(false);
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

fn error_response(status: StatusCode, error_type: &str, message: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        serde_json::json!({"errorType": error_type, "errorMessage": message}),
    )
}

/// Runs one instance until it exits or is killed, then reports to its function.
pub(crate) async fn run_instance(function: Arc<Function>, id: u64, kill: CancellationToken) {
    let name = function.name().to_string();
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => {
            function.start_failed(format!("cannot open a Runtime API listener: {e}"));
            function.exited(id, false, true, "no listener");
            return;
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let instance = Arc::new(Instance {
        function: function.clone(),
        id,
        kill: kill.clone(),
        ready: AtomicBool::new(false),
        init_failed: AtomicBool::new(false),
        current: Mutex::new(None),
    });
    let server = tokio::spawn(serve(listener, instance.clone()));

    let started = tokio::time::Instant::now();
    let status = match spawn_process(&function, id, &addr.to_string()) {
        Err(e) => {
            let message = format!("cannot run {:?}: {e}", function.spec.config.command);
            warn!(function = %name, instance = id, error = %message, "instance failed to start");
            function.start_failed(message);
            "not started".to_string()
        }
        Ok(mut child) => {
            let pid = child.id();
            debug!(function = %name, instance = id, pid, api = %addr, "instance started");
            let status = tokio::select! {
                status = child.wait() => status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                _ = kill.cancelled() => {
                    kill_group(pid);
                    let _ = child.kill().await;
                    "killed".to_string()
                }
                _ = function.shutdown.cancelled() => {
                    kill_group(pid);
                    let _ = child.kill().await;
                    "stopped with the host".to_string()
                }
            };
            // Whatever it started in its group goes with it.
            kill_group(pid);
            status
        }
    };
    server.abort();
    let _ = server.await;
    kill.cancel();
    let ready = instance.ready.load(Ordering::SeqCst);
    let held = instance.current.lock().expect("instance lock").take();
    if let Some(running) = held {
        warn!(function = %name, instance = id, request_id = %running.request_id, %status, "instance exited mid-invocation");
        let _ = running
            .result
            .send(Err(InvokeError::Crashed(status.clone())));
    } else if !function.shutdown.is_cancelled() && status != "killed" {
        info!(function = %name, instance = id, %status, uptime_ms = started.elapsed().as_millis() as u64, "instance exited");
    }
    let failed_start = !ready || instance.init_failed.load(Ordering::SeqCst);
    function.exited(id, ready, failed_start, &status);
}

/// Sends SIGKILL to the process group `pid` leads (the instance and its children).
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is
        // touched. The group is the instance's own (process_group(0) below).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// Starts the instance process with the Lambda environment.
fn spawn_process(
    function: &Function,
    id: u64,
    api: &str,
) -> std::io::Result<tokio::process::Child> {
    let spec = &function.spec;
    let config = &spec.config;
    let task_root = match &config.workdir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|_| ".".into()),
    };
    let stream = format!(
        "{}/[$LATEST]{}",
        chrono::Utc::now().format("%Y/%m/%d"),
        uuid::Uuid::new_v4().simple()
    );
    let mut cmd = tokio::process::Command::new(&config.command);
    cmd.args(&config.args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TZ", ":UTC")
        .env("LANG", "C.UTF-8")
        .env("AWS_LAMBDA_RUNTIME_API", api)
        .env("AWS_LAMBDA_FUNCTION_NAME", config.name.as_str())
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", config.memory.to_string())
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", config.name),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", stream)
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .env("AWS_REGION", &spec.region)
        .env("AWS_DEFAULT_REGION", &spec.region)
        .env(
            "_HANDLER",
            config.handler.as_deref().unwrap_or(&config.name),
        )
        .env("LAMBDA_TASK_ROOT", &task_root)
        .env("LAMBDA_RUNTIME_DIR", &task_root)
        .envs(&config.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    if let Some(dir) = &config.workdir {
        cmd.current_dir(dir);
    }
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and only sets a flag of
    // the child: it is killed if Sluice dies, even by SIGKILL.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward(out, config.name.to_string(), id, "stdout"));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward(err, config.name.to_string(), id, "stderr"));
    }
    Ok(child)
}

/// Forwards an instance's output to the logs, line by line, with the function name.
async fn forward(
    stream: impl AsyncRead + Unpin,
    function: String,
    instance: u64,
    which: &'static str,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        info!(target: "sluice::functions::output", function = %function, instance, stream = which, line = %line, "function output");
    }
}

/// Serves the Runtime API of one instance until aborted (which drops its connections).
async fn serve(listener: TcpListener, instance: Arc<Instance>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        while connections.try_join_next().is_some() {}
        let instance = instance.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let instance = instance.clone();
                async move { Ok::<_, Infallible>(route(instance, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(instance: Arc<Instance>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return error_response(StatusCode::NOT_FOUND, "NotFound", "unknown path");
    };
    match (req.method(), rest) {
        (&Method::GET, "invocation/next") => next(&instance).await,
        (&Method::POST, "init/error") => init_error(&instance, req).await,
        (&Method::POST, rest) => match rest
            .strip_prefix("invocation/")
            .and_then(|r| r.rsplit_once('/'))
        {
            Some((id, "response")) => respond(&instance, id, req, true).await,
            Some((id, "error")) => respond(&instance, id, req, false).await,
            _ => error_response(StatusCode::NOT_FOUND, "NotFound", "unknown path"),
        },
        _ => error_response(StatusCode::NOT_FOUND, "NotFound", "unknown path"),
    }
}

/// `GET .../invocation/next`: hands the instance the next invocation of its function.
async fn next(instance: &Arc<Instance>) -> Response<Full<Bytes>> {
    let function = &instance.function;
    if !instance.ready.swap(true, Ordering::SeqCst) {
        function.started(instance.id);
    }
    // Asking for more work while holding an invocation: the runtime dropped it.
    let dropped = instance.current.lock().expect("instance lock").take();
    if let Some(running) = dropped {
        let _ = running.result.send(Err(InvokeError::Function {
            error_type: "Runtime.NoResponse".into(),
            message: "the runtime asked for the next invocation without answering this one".into(),
            body: Bytes::new(),
        }));
    }
    let invocation = {
        let _idle = Idle::new(function);
        loop {
            // The lock is held while waiting, on purpose: idle instances queue on this
            // fair mutex and take invocations in turn.
            let wait = async { function.queue_rx.lock().await.recv().await };
            let received = tokio::select! {
                received = wait => received,
                _ = instance.kill.cancelled() => None,
                _ = tokio::time::sleep(function.spec.config.idle_timeout) => {
                    if function.retire(instance.id) {
                        debug!(function = %function.name(), instance = instance.id, "idle instance stopping");
                        instance.kill.cancel();
                        None
                    } else {
                        continue;
                    }
                }
            };
            let Some(invocation) = received else {
                return error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "the instance is stopping",
                );
            };
            function.dequeued();
            // Its caller stopped waiting (queue_timeout): skip it.
            let super::Invocation {
                request_id,
                payload,
                taken,
                result,
            } = invocation;
            if result.is_closed() || taken.send(()).is_err() {
                continue;
            }
            break (request_id, payload, result);
        }
    };
    let (request_id, payload, result) = invocation;
    let timeout = function.spec.config.timeout;
    let deadline = now_ms() + timeout.as_millis() as u64;
    let done = CancellationToken::new();
    *instance.current.lock().expect("instance lock") = Some(Running {
        request_id: request_id.clone(),
        result,
        _done: done.clone().drop_guard(),
    });
    tokio::spawn(watchdog(
        instance.clone(),
        request_id.clone(),
        timeout,
        done,
    ));
    let trace = format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0",
        now_ms() / 1000,
        &uuid::Uuid::new_v4().simple().to_string()[..24],
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &request_id)
        .header("lambda-runtime-deadline-ms", deadline.to_string())
        .header("lambda-runtime-invoked-function-arn", &function.spec.arn)
        .header("lambda-runtime-trace-id", trace)
        .body(Full::new(payload))
        .expect("a valid response")
}

/// Fails the invocation and kills the instance if it is still running at `timeout`.
async fn watchdog(
    instance: Arc<Instance>,
    request_id: String,
    timeout: Duration,
    done: CancellationToken,
) {
    tokio::select! {
        _ = tokio::time::sleep(timeout) => {}
        _ = instance.kill.cancelled() => return,
        _ = done.cancelled() => return,
    }
    if let Some(running) = instance.take(&request_id) {
        warn!(function = %instance.function.name(), instance = instance.id, request_id, timeout_ms = timeout.as_millis() as u64, "invocation timed out; killing the instance");
        let _ = running.result.send(Err(InvokeError::Timeout(timeout)));
        instance.kill.cancel();
    }
}

/// `POST .../invocation/{id}/response` and `.../error`.
async fn respond(
    instance: &Instance,
    request_id: &str,
    req: Request<Incoming>,
    success: bool,
) -> Response<Full<Bytes>> {
    let header_type = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = Limited::new(req.into_body(), MAX_PAYLOAD).collect().await;
    let Some(running) = instance.take(request_id) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            &format!("no invocation {request_id:?} is running on this instance"),
        );
    };
    let body = match body {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            let _ = running.result.send(Err(InvokeError::Function {
                error_type: "Function.ResponseSizeTooLarge".into(),
                message: format!("the response could not be read: {e}"),
                body: Bytes::new(),
            }));
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!("responses are limited to {MAX_PAYLOAD} bytes"),
            );
        }
    };
    let outcome = if success {
        Ok(body)
    } else {
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let error_type = parsed["errorType"]
            .as_str()
            .map(str::to_string)
            .or(header_type)
            .unwrap_or_else(|| "Unhandled".into());
        let message = parsed["errorMessage"].as_str().map_or_else(
            || String::from_utf8_lossy(&body).into_owned(),
            str::to_string,
        );
        Err(InvokeError::Function {
            error_type,
            message,
            body,
        })
    };
    let _ = running.result.send(outcome);
    json_response(StatusCode::ACCEPTED, serde_json::json!({"status": "OK"}))
}

/// `POST .../init/error`: the runtime could not initialise; the instance is stopped.
async fn init_error(instance: &Instance, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let body = Limited::new(req.into_body(), 64 * 1024)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let message = format!(
        "init error {}: {}",
        parsed["errorType"].as_str().unwrap_or("Runtime.InitError"),
        parsed["errorMessage"].as_str().map_or_else(
            || String::from_utf8_lossy(&body).into_owned(),
            str::to_string
        )
    );
    warn!(function = %instance.function.name(), instance = instance.id, error = %message, "instance reported an init error");
    instance.function.start_failed(message);
    // Its exit counts as a start failure.
    instance.init_failed.store(true, Ordering::SeqCst);
    instance.kill.cancel();
    json_response(StatusCode::ACCEPTED, serde_json::json!({"status": "OK"}))
}

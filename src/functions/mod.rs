//! The function host: runs the functions of `functions:` as child processes that speak
//! the AWS Lambda Runtime API, so any Lambda custom runtime (a `lambda_runtime` binary
//! from `functions/`, or another language's runtime client) runs unchanged.
//!
//! Each function is a pool of instances. An instance is one process with its own
//! loopback Runtime API listener (`AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT`, see
//! [`runtime_api`]); it asks for work with `GET .../invocation/next` and answers with
//! `POST .../{id}/response` or `.../{id}/error`, one invocation at a time, so the
//! number of instances is the function's concurrency. An invocation waits in the
//! function's queue for an idle instance; when none is idle and fewer than
//! `max_instances` run, a new one starts (a cold start). `min_instances` are started
//! up front and replaced when they exit.
//!
//! An instance that overruns `timeout` is killed and its invocation fails; one that
//! exits mid-invocation fails its invocation; either is replaced as needed. An instance
//! that exits before asking for work (a bad binary, an init error) counts as a start
//! failure: the next start waits an exponentially growing backoff (100 ms doubling to
//! 30 s), and while no instance runs, invocations fail at once with
//! [`InvokeError::Unavailable`] instead of waiting. The host knows nothing about Redis:
//! the dispatcher turns a failed invocation into a retry (see docs/functions.md).

pub mod invoke_api;
pub mod runtime_api;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::config::FunctionConfig;

/// Largest invocation payload and response, as Lambda's synchronous limit (6 MB).
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;
/// Queued invocations per function beyond which new ones are refused (throttled).
const MAX_QUEUED: usize = 10_000;
/// First wait after a start failure; doubles per consecutive failure up to
/// [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Why an invocation did not produce a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// No function of that name is configured.
    #[error("no function named {0:?}")]
    Unknown(String),
    /// The function answered an error (`POST .../error`): its error type and body
    /// (Lambda's `{"errorType", "errorMessage"}` JSON).
    #[error("function error {error_type}: {message}")]
    Function {
        error_type: String,
        message: String,
        body: Bytes,
    },
    /// The invocation ran past the function's timeout; the instance was killed.
    #[error("timed out after {0:?}; the instance was killed")]
    Timeout(Duration),
    /// The instance exited (or was lost) mid-invocation.
    #[error("the instance exited mid-invocation ({0})")]
    Crashed(String),
    /// The function cannot start instances right now (crash loop, missing binary).
    #[error("the function cannot start: {0}")]
    Unavailable(String),
    /// No instance became free within `queue_timeout`, or the queue is full.
    #[error("throttled: no instance free within {0:?}")]
    Throttled(Duration),
    /// The host is shutting down.
    #[error("the function host is shutting down")]
    ShuttingDown,
}

impl InvokeError {
    /// Lambda's `errorType` for the failures that are not the function's own answer.
    pub fn error_type(&self) -> &str {
        match self {
            InvokeError::Function { error_type, .. } => error_type,
            InvokeError::Timeout(_) => "Sandbox.Timedout",
            InvokeError::Crashed(_) => "Runtime.ExitError",
            InvokeError::Unavailable(_) => "Runtime.Unavailable",
            InvokeError::Throttled(_) => "TooManyRequestsException",
            InvokeError::Unknown(_) => "ResourceNotFoundException",
            InvokeError::ShuttingDown => "ServiceException",
        }
    }

    /// The error as Lambda's `{"errorType", "errorMessage"}` JSON body.
    pub fn body(&self) -> Bytes {
        match self {
            InvokeError::Function { body, .. } if !body.is_empty() => body.clone(),
            other => Bytes::from(
                serde_json::json!({"errorType": other.error_type(), "errorMessage": other.to_string()})
                    .to_string(),
            ),
        }
    }
}

pub type InvokeResult = Result<Bytes, InvokeError>;

/// One invocation waiting for, or held by, an instance.
pub(crate) struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    /// Told when an instance takes the invocation (ends its queue wait).
    pub taken: oneshot::Sender<()>,
    pub result: oneshot::Sender<InvokeResult>,
}

/// The settings of one function, fixed at start.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub config: FunctionConfig,
    pub region: String,
    pub arn: String,
}

/// Counters of a function's pool, changed under one lock that is never held across
/// an `.await`.
#[derive(Debug, Default)]
struct Pool {
    /// Instances started and not yet exited, by id.
    live: HashMap<u64, CancellationToken>,
    /// Instances started that have not yet asked for work.
    starting: usize,
    /// Instances waiting in `GET .../next`.
    idle: usize,
    /// Invocations in the queue (taken ones excluded).
    queued: usize,
    /// Consecutive start failures, and when the next start may happen.
    failures: u32,
    next_start: Option<tokio::time::Instant>,
    /// A wake-up to retry starting is scheduled.
    wake_scheduled: bool,
    last_error: Option<String>,
    next_id: u64,
    /// Most instances seen alive at once (for the logs and tests).
    peak: usize,
}

/// A function: its spec, its queue and its pool of instances.
pub struct Function {
    pub spec: FunctionSpec,
    queue_tx: mpsc::UnboundedSender<Invocation>,
    /// Shared by the `next` handlers of all instances: whichever is idle first takes
    /// the next invocation (a tokio mutex, fair, so idle instances are served in turn).
    pub(crate) queue_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    pool: Mutex<Pool>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.spec.config.name)
            .finish()
    }
}

impl Function {
    pub fn name(&self) -> &str {
        &self.spec.config.name
    }

    /// Runs one invocation: waits for an instance (up to `queue_timeout`), then for its
    /// answer (the instance is killed past `timeout`).
    pub async fn invoke(self: &Arc<Self>, payload: Bytes) -> InvokeResult {
        if self.shutdown.is_cancelled() {
            return Err(InvokeError::ShuttingDown);
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let (taken_tx, taken_rx) = oneshot::channel();
        let (result_tx, result_rx) = oneshot::channel();
        {
            let mut pool = self.pool.lock().expect("pool lock");
            let backing_off = pool
                .next_start
                .is_some_and(|at| at > tokio::time::Instant::now());
            if pool.live.is_empty() && pool.failures > 0 && backing_off {
                // Crash loop: fail now, the caller's retry policy waits, not us; once
                // the backoff is over, an invocation tries a start again.
                return Err(InvokeError::Unavailable(
                    pool.last_error.clone().unwrap_or_default(),
                ));
            }
            if pool.queued >= MAX_QUEUED {
                return Err(InvokeError::Throttled(Duration::ZERO));
            }
            pool.queued += 1;
        }
        let invocation = Invocation {
            request_id: request_id.clone(),
            payload,
            taken: taken_tx,
            result: result_tx,
        };
        if self.queue_tx.send(invocation).is_err() {
            return Err(InvokeError::ShuttingDown);
        }
        self.scale();
        let wait = self.spec.config.queue_timeout;
        match tokio::time::timeout(wait, taken_rx).await {
            Ok(Ok(())) => {}
            // Dropped untaken: the queue was failed (crash loop) or the host stops.
            Ok(Err(_)) => {}
            Err(_) => {
                debug!(function = %self.name(), request_id, "no instance free in time");
                // The `next` handler skips it (its receivers are gone) and counts it out.
                return Err(InvokeError::Throttled(wait));
            }
        }
        match result_rx.await {
            Ok(result) => result,
            Err(_) => Err(self.lost_reason()),
        }
    }

    /// Why an invocation was dropped without an answer.
    fn lost_reason(&self) -> InvokeError {
        if self.shutdown.is_cancelled() {
            return InvokeError::ShuttingDown;
        }
        let pool = self.pool.lock().expect("pool lock");
        match &pool.last_error {
            Some(e) if pool.failures > 0 => InvokeError::Unavailable(e.clone()),
            _ => InvokeError::Crashed("the instance was lost".into()),
        }
    }

    /// Starts instances while invocations outnumber the instances that will soon take
    /// them, up to `max_instances`; keeps `min_instances` running.
    fn scale(self: &Arc<Self>) {
        let max = self.spec.config.max_instances;
        let min = self.spec.config.min_instances;
        let mut to_start = Vec::new();
        {
            let mut pool = self.pool.lock().expect("pool lock");
            if self.shutdown.is_cancelled() {
                return;
            }
            let now = tokio::time::Instant::now();
            if let Some(at) = pool.next_start.filter(|at| *at > now) {
                if !pool.wake_scheduled {
                    pool.wake_scheduled = true;
                    let me = self.clone();
                    self.tasks.spawn(async move {
                        tokio::select! {
                            _ = tokio::time::sleep_until(at) => {}
                            _ = me.shutdown.cancelled() => return,
                        }
                        me.pool.lock().expect("pool lock").wake_scheduled = false;
                        me.scale();
                    });
                }
                return;
            }
            while pool.live.len() < max
                && (pool.live.len() < min || pool.queued > pool.idle + pool.starting)
            {
                let id = pool.next_id;
                pool.next_id += 1;
                let kill = CancellationToken::new();
                pool.live.insert(id, kill.clone());
                pool.starting += 1;
                pool.peak = pool.peak.max(pool.live.len());
                to_start.push((id, kill));
                // One start at a time while failing: no burst of doomed processes.
                if pool.failures > 0 {
                    break;
                }
            }
        }
        for (id, kill) in to_start {
            let me = self.clone();
            self.tasks.spawn(runtime_api::run_instance(me, id, kill));
        }
    }

    /// An instance asked for work for the first time.
    pub(crate) fn started(&self, id: u64) {
        let mut pool = self.pool.lock().expect("pool lock");
        pool.starting = pool.starting.saturating_sub(1);
        pool.failures = 0;
        pool.next_start = None;
        debug!(function = %self.name(), instance = id, live = pool.live.len(), "instance ready");
    }

    /// An instance waits for work (`true`) or stopped waiting (`false`).
    pub(crate) fn set_idle(&self, idle: bool) {
        let mut pool = self.pool.lock().expect("pool lock");
        if idle {
            pool.idle += 1;
        } else {
            pool.idle = pool.idle.saturating_sub(1);
        }
    }

    /// An invocation left the queue (taken, or skipped because its caller gave up).
    pub(crate) fn dequeued(&self) {
        let mut pool = self.pool.lock().expect("pool lock");
        pool.queued = pool.queued.saturating_sub(1);
    }

    /// An instance idle for `idle_timeout` asks to stop: yes while more than
    /// `min_instances` run (it leaves the pool at once, so two cannot both go).
    pub(crate) fn retire(&self, id: u64) -> bool {
        let mut pool = self.pool.lock().expect("pool lock");
        if pool.live.len() > self.spec.config.min_instances {
            pool.live.remove(&id);
            true
        } else {
            false
        }
    }

    /// Records why starting an instance failed (init error, spawn error).
    pub(crate) fn start_failed(&self, message: String) {
        self.pool.lock().expect("pool lock").last_error = Some(message);
    }

    /// An instance is gone. `asked`: it had asked for work; `failed_start`: it never
    /// became able to work (exited before asking, or reported an init error), which
    /// counts as a start failure: the next start backs off.
    pub(crate) fn exited(self: &Arc<Self>, id: u64, asked: bool, failed_start: bool, status: &str) {
        let failed_queue = {
            let mut pool = self.pool.lock().expect("pool lock");
            pool.live.remove(&id);
            if !asked {
                pool.starting = pool.starting.saturating_sub(1);
            }
            if self.shutdown.is_cancelled() {
                return;
            }
            if !failed_start {
                false
            } else {
                pool.failures = pool.failures.saturating_add(1);
                let wait = BACKOFF_MIN
                    .saturating_mul(1 << (pool.failures - 1).min(16))
                    .min(BACKOFF_MAX);
                pool.next_start = Some(tokio::time::Instant::now() + wait);
                let reason = pool
                    .last_error
                    .get_or_insert_with(|| {
                        format!("instance exited before asking for work ({status})")
                    })
                    .clone();
                warn!(function = %self.name(), instance = id, failures = pool.failures, backoff_ms = wait.as_millis() as u64, reason, "instance failed to start");
                pool.live.is_empty()
            }
        };
        if failed_queue {
            self.fail_queue();
        }
        self.scale();
    }

    /// Fails every queued invocation: nothing can run them until a start succeeds.
    fn fail_queue(&self) {
        let Ok(mut rx) = self.queue_rx.try_lock() else {
            // An instance's `next` handler holds it: there is an instance after all.
            return;
        };
        let reason = self
            .pool
            .lock()
            .expect("pool lock")
            .last_error
            .clone()
            .unwrap_or_default();
        while let Ok(invocation) = rx.try_recv() {
            self.dequeued();
            let _ = invocation
                .result
                .send(Err(InvokeError::Unavailable(reason.clone())));
        }
    }

    /// Instances alive now, and the most alive at once so far.
    pub fn instances(&self) -> (usize, usize) {
        let pool = self.pool.lock().expect("pool lock");
        (pool.live.len(), pool.peak)
    }
}

/// Every function of the configuration, with their instances.
#[derive(Debug)]
pub struct FunctionHost {
    functions: HashMap<String, Arc<Function>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl FunctionHost {
    /// Starts the host: `min_instances` of each function start now. Must be called
    /// within a tokio runtime. `region` and `account` shape the Lambda environment and
    /// the function ARNs.
    pub fn start(configs: &[FunctionConfig], region: &str, account: Option<&str>) -> FunctionHost {
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let account = account.unwrap_or("000000000000");
        let functions = configs
            .iter()
            .map(|config| {
                let (tx, rx) = mpsc::unbounded_channel();
                let function = Arc::new(Function {
                    spec: FunctionSpec {
                        config: config.clone(),
                        region: region.to_string(),
                        arn: format!("arn:aws:lambda:{region}:{account}:function:{}", config.name),
                    },
                    queue_tx: tx,
                    queue_rx: tokio::sync::Mutex::new(rx),
                    pool: Mutex::new(Pool::default()),
                    shutdown: shutdown.clone(),
                    tasks: tasks.clone(),
                });
                function.scale();
                (config.name.to_string(), function)
            })
            .collect();
        if !configs.is_empty() {
            info!(functions = configs.len(), "function host started");
        }
        FunctionHost {
            functions,
            shutdown,
            tasks,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Function>> {
        self.functions.get(name)
    }

    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    /// Invokes function `name` with `payload` (JSON bytes).
    pub async fn invoke(&self, name: &str, payload: Bytes) -> InvokeResult {
        match self.functions.get(name) {
            Some(f) => f.invoke(payload).await,
            None => Err(InvokeError::Unknown(name.to_string())),
        }
    }

    /// Stops every instance (SIGKILL) and waits until all are reaped.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

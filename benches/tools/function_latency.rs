//! Function host latency: cold start of an instance and warm invocation round trips,
//! in process (no Redis, no HTTP ingress), with a function binary from `functions/`.
//!
//! cargo build -p echo && cargo run --example function-latency -- \
//!     --command target/debug/echo --cold 20 --warm 2000 --parallel 4000
//!
//! Cold: a fresh host per sample, `min_instances: 0`, so the first invocation starts
//! the process (spawn, runtime init, first `next`) and runs. Warm: one instance kept
//! running, invocations one after the other; the round trip (payload to the function
//! over its Runtime API and the result back) bounds the host's overhead in both
//! directions. Parallel: 4 instances, 16 callers.
//!
//! Through a gateway (event in -> function receives it), with a running `sluice serve`
//! whose bus routes to a `function` target running `echo` with `ECHO_LOG=FILE`:
//!
//! cargo run --example function-latency -- --gateway http://127.0.0.1:8090/buses/bench/events \
//!     --log /tmp/echo.log --events 500
//!
//! Events go one at a time, 10 ms apart, each with its send time (µs) as its id; echo
//! logs when it received each, so the difference is ingest -> Redis -> router ->
//! dispatcher -> host -> function.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice::functions::FunctionHost;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn host(command: &str, min: usize, max: usize) -> FunctionHost {
    let yaml = format!(
        "functions: [{{name: f, command: {command:?}, min_instances: {min}, max_instances: {max}}}]"
    );
    let config = sluice::plan::Plan::parse(&yaml)
        .expect("a valid config")
        .config;
    FunctionHost::start(&config.functions, "us-east-1", None)
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{name}: n={} p50={:?} p90={:?} p99={:?} max={:?} mean={mean:?}",
        samples.len(),
        pick(0.5),
        pick(0.9),
        pick(0.99),
        samples[samples.len() - 1]
    );
}

fn now_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

async fn through_gateway(url: &str, log: &str, events: usize) {
    let client = reqwest::Client::new();
    let _ = std::fs::remove_file(log);
    for _ in 0..events {
        let id = now_us();
        let body = format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"/bench","type":"t","data":{{"pad":"{}"}}}}"#,
            "x".repeat(400)
        );
        let status = client
            .post(url)
            .header("content-type", "application/cloudevents+json")
            .body(body)
            .send()
            .await
            .expect("posting an event")
            .status();
        assert!(status.is_success(), "{status}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let text = std::fs::read_to_string(log).expect("reading the echo log");
    let samples: Vec<Duration> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let received: u128 = f.get(3)?.parse().ok()?;
            let sent: u128 = f.get(4)?.parse().ok()?;
            Some(Duration::from_micros(received.saturating_sub(sent) as u64))
        })
        .collect();
    println!("received {} of {events}", samples.len());
    summary("event in -> function receives it", samples);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--gateway") {
        let events: usize = arg(&args, "--events", "500").parse().unwrap();
        return through_gateway(
            &arg(&args, "--gateway", ""),
            &arg(&args, "--log", ""),
            events,
        )
        .await;
    }
    let command = arg(&args, "--command", "target/debug/echo");
    let cold: usize = arg(&args, "--cold", "20").parse().unwrap();
    let warm: usize = arg(&args, "--warm", "2000").parse().unwrap();
    let parallel: usize = arg(&args, "--parallel", "4000").parse().unwrap();
    let payload = Bytes::from(format!(
        r#"{{"specversion":"1.0","id":"1","source":"/bench","type":"t","data":{{"pad":"{}"}}}}"#,
        "x".repeat(400)
    ));

    let mut samples = Vec::new();
    for _ in 0..cold {
        let h = host(&command, 0, 1);
        let start = Instant::now();
        h.invoke("f", payload.clone())
            .await
            .expect("cold invocation");
        samples.push(start.elapsed());
        h.shutdown().await;
    }
    summary("cold start + first invocation", samples);

    let h = host(&command, 1, 1);
    h.invoke("f", payload.clone()).await.expect("warm-up");
    let mut samples = Vec::with_capacity(warm);
    for _ in 0..warm {
        let start = Instant::now();
        h.invoke("f", payload.clone())
            .await
            .expect("warm invocation");
        samples.push(start.elapsed());
    }
    summary("warm invocation round trip", samples);
    h.shutdown().await;

    let h = Arc::new(host(&command, 4, 4));
    h.invoke("f", payload.clone()).await.expect("warm-up");
    let start = Instant::now();
    let mut callers = tokio::task::JoinSet::new();
    for c in 0..16 {
        let h = h.clone();
        let payload = payload.clone();
        callers.spawn(async move {
            for _ in (c..parallel).step_by(16) {
                h.invoke("f", payload.clone()).await.expect("invocation");
            }
        });
    }
    while callers.join_next().await.is_some() {}
    let elapsed = start.elapsed();
    println!(
        "parallel: {parallel} invocations on 4 instances by 16 callers in {elapsed:?} = {:.0}/s",
        parallel as f64 / elapsed.as_secs_f64()
    );
    h.shutdown().await;
}

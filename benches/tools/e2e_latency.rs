//! End-to-end latency: sends binary-mode events to a running Sluice at a fixed rate and
//! receives them on a local HTTP target, reporting ingest -> target-received latency.
//!
//! cargo run --release --example e2e-latency -- \
//!     --gateway http://127.0.0.1:8090/buses/bench/events --listen 127.0.0.1:8092 \
//!     --rate 2000 --seconds 20
//!
//! The gateway's config must route the bus to `http://<listen>/` (see benches/load/).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

#[derive(Default)]
struct Clock {
    sent: Mutex<HashMap<u64, Instant>>,
    latencies: Mutex<Vec<Duration>>,
}

async fn receive(req: HttpRequest, clock: web::Data<Clock>) -> HttpResponse {
    let now = Instant::now();
    let id = req
        .headers()
        .get("ce-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(id) = id {
        if let Some(sent) = clock.sent.lock().unwrap().remove(&id) {
            clock.latencies.lock().unwrap().push(now - sent);
        }
    }
    HttpResponse::Ok().finish()
}

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let gateway = arg(
        &args,
        "--gateway",
        "http://127.0.0.1:8090/buses/bench/events",
    );
    let listen = arg(&args, "--listen", "127.0.0.1:8092");
    let rate: u64 = arg(&args, "--rate", "2000").parse().expect("--rate");
    let seconds: u64 = arg(&args, "--seconds", "20").parse().expect("--seconds");

    let clock = web::Data::new(Clock::default());
    let server_clock = clock.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(server_clock.clone())
            .default_service(web::to(receive))
    })
    .workers(1)
    .bind(listen)?
    .run();
    tokio::spawn(server);

    let client = reqwest::Client::new();
    let body = format!(
        r#"{{"order":{{"id":"o-1","amount":120.5,"currency":"EUR","note":"{}"}}}}"#,
        "x".repeat(400)
    );
    let total = rate * seconds;
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for id in 0..total {
        ticker.tick().await;
        clock.sent.lock().unwrap().insert(id, Instant::now());
        let request = client
            .post(&gateway)
            .header("ce-specversion", "1.0")
            .header("ce-id", id.to_string())
            .header("ce-source", "/bench")
            .header("ce-type", "order.paid")
            .header("content-type", "application/json")
            .body(body.clone());
        let failures = failures.clone();
        tokio::spawn(async move {
            match request.send().await {
                Ok(r) if r.status().as_u16() == 202 => {}
                _ => {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut latencies = clock.latencies.lock().unwrap().clone();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "sent {total} events at {rate}/s over {seconds}s; received {}; ingest failures {}",
        latencies.len(),
        failures.load(std::sync::atomic::Ordering::Relaxed)
    );
    if !latencies.is_empty() {
        println!(
            "latency ingest -> target: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.90).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            latencies.last().unwrap().as_secs_f64() * 1e3
        );
    }
    Ok(())
}

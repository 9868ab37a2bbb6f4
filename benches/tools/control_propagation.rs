//! Control-plane propagation: how long after the API's 2xx on replica A a changed rule
//! routes events ingested on replica B; and how long `POST /api/v1/apply` of N rules
//! takes.
//!
//! cargo run --example control-propagation -- \
//!     --a http://127.0.0.1:8101 --b http://127.0.0.1:8102 --listen 127.0.0.1:8103 \
//!     --changes 100 --apply-rules 10000
//!
//! Both replicas run on one Redis with no rules (`sluice serve` without `--config`); the
//! tool creates bus `propagation`, then `--changes` times: PUTs rule `probe` on A with a
//! new event type and target URL `http://<listen>/<n>`, and from the 2xx on, ingests an
//! event of that type on B every millisecond until the target receives one. It reports
//! p50/p99/max of those times, then applies `--apply-rules` rules in one request and
//! reports its wall time (and deletes them again with `prune`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::json;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

async fn receive(req: HttpRequest, seen: web::Data<Arc<AtomicU64>>) -> HttpResponse {
    // The path is the change's number: only the current change's target counts.
    if let Ok(n) = req.path().trim_start_matches('/').parse::<u64>() {
        seen.fetch_max(n, Ordering::SeqCst);
    }
    HttpResponse::Ok().finish()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let a = arg(&args, "--a", "http://127.0.0.1:8101");
    let b = arg(&args, "--b", "http://127.0.0.1:8102");
    let listen = arg(&args, "--listen", "127.0.0.1:8103");
    let changes: u64 = arg(&args, "--changes", "100").parse().expect("--changes");
    let apply_rules: usize = arg(&args, "--apply-rules", "10000")
        .parse()
        .expect("--apply-rules");

    let seen = Arc::new(AtomicU64::new(0));
    let data = web::Data::new(seen.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(receive))
    })
    .workers(1)
    .bind(&listen)?
    .run();
    tokio::spawn(server);

    let client = reqwest::Client::new();
    let put = |url: String, body: serde_json::Value| {
        let client = client.clone();
        async move {
            let res = client
                .put(url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .expect("PUT");
            assert!(res.status().is_success(), "{}", res.text().await.unwrap());
        }
    };
    put(format!("{a}/api/v1/buses/propagation"), json!({})).await;

    let mut took = Vec::new();
    for n in 1..=changes {
        let ty = format!("probe.{n}");
        put(
            format!("{a}/api/v1/buses/propagation/rules/probe"),
            json!({"pattern": {"type": [ty]},
                   "targets": [{"name": "rx", "kind": "http", "url": format!("http://{listen}/{n}")}]}),
        )
        .await;
        let start = Instant::now();
        let mut i = 0u64;
        while seen.load(Ordering::SeqCst) < n {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "change {n} never routed"
            );
            let res = client
                .post(format!("{b}/buses/propagation/events"))
                .header("ce-specversion", "1.0")
                .header("ce-id", format!("{n}-{i}"))
                .header("ce-source", "bench")
                .header("ce-type", &ty)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("ingest");
            assert_eq!(res.status(), 202);
            i += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // When B routed the first event of the new type (delivery time included).
        took.push(start.elapsed());
    }
    took.sort();
    println!(
        "propagation over {changes} changes (API 2xx on A -> first delivery of an event ingested on B): p50 {:?} p99 {:?} max {:?}",
        percentile(&took, 0.5),
        percentile(&took, 0.99),
        took.last().unwrap()
    );

    if apply_rules > 0 {
        let rules: Vec<_> = (0..apply_rules)
            .map(|i| json!({"name": format!("bulk-{i}"), "bus": "propagation",
                            "pattern": {"type": [format!("bulk.{i}")], "data": {"amount": [{"numeric": [">", i]}]}},
                            "targets": [{"name": "rx", "kind": "http", "url": format!("http://{listen}/0")}]}))
            .collect();
        let body = json!({"config": {"buses": [{"name": "propagation"}], "rules": rules}});
        let start = Instant::now();
        let res = client
            .post(format!("{a}/api/v1/apply"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("apply");
        let status = res.status();
        let text = res.text().await.unwrap();
        assert!(status.is_success(), "{text}");
        println!(
            "apply of {apply_rules} rules: {:?} (request body {} bytes)",
            start.elapsed(),
            body.to_string().len()
        );
        let start = Instant::now();
        let res = client
            .post(format!("{a}/api/v1/apply"))
            .header("content-type", "application/json")
            .body(
                json!({"config": {"buses": [{"name": "propagation"}]}, "prune": true}).to_string(),
            )
            .send()
            .await
            .expect("prune");
        assert!(res.status().is_success());
        println!("prune of them: {:?}", start.elapsed());
    }
    Ok(())
}

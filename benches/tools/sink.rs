//! A delivery target for benchmarks: answers every POST with 200 and counts them;
//! `GET /count` tells how many arrived.
//!
//! cargo run --release --example sink -- --listen 127.0.0.1:8093

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{web, App, HttpResponse, HttpServer};

async fn receive(count: web::Data<AtomicU64>) -> HttpResponse {
    count.fetch_add(1, Ordering::Relaxed);
    HttpResponse::Ok().finish()
}

async fn count(count: web::Data<AtomicU64>) -> HttpResponse {
    HttpResponse::Ok().body(count.load(Ordering::Relaxed).to_string())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let listen = args
        .iter()
        .position(|a| a == "--listen")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:8093".into());
    let counter = web::Data::new(AtomicU64::new(0));
    HttpServer::new(move || {
        App::new()
            .app_data(counter.clone())
            .route("/count", web::get().to(count))
            .default_service(web::to(receive))
    })
    .workers(1)
    .shutdown_timeout(1)
    .bind(listen)?
    .run()
    .await
}

//! Baseline for the ingest benchmark: the least an HTTP-to-Redis-Streams gateway can do.
//! One actix-web route that appends the request body with one XADD over a multiplexed
//! connection and answers 202. No parsing, no validation.
//!
//! cargo run --release --example xadd-baseline -- 127.0.0.1:8091 redis://127.0.0.1:6390

use actix_web::{web, App, HttpResponse, HttpServer};
use redis::aio::ConnectionManager;

// Same allocator as the sluice binary, so the comparison is of the request path only.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn append(body: web::Bytes, redis: web::Data<ConnectionManager>) -> HttpResponse {
    let mut conn = redis.get_ref().clone();
    let res: redis::RedisResult<String> = redis::cmd("XADD")
        .arg("baseline:events")
        .arg("MAXLEN")
        .arg("~")
        .arg(1_000_000)
        .arg("*")
        .arg("d")
        .arg(body.as_ref())
        .query_async(&mut conn)
        .await;
    match res {
        Ok(_) => HttpResponse::Accepted().finish(),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8091".into());
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let client = redis::Client::open(url).expect("redis url");
    let conn = ConnectionManager::new(client)
        .await
        .expect("redis connection");
    let data = web::Data::new(conn);
    HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/buses/{bus}/events", web::post().to(append))
    })
    .bind(listen)?
    .run()
    .await
}

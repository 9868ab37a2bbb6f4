//! `sluice dev` only: a built-in target at `/dev/echo` that prints what it receives and
//! keeps the last requests for `GET /dev/echo`, so the quickstart needs no other server.

use std::collections::VecDeque;
use std::sync::Mutex;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

const KEEP: usize = 100;

/// The last requests the echo target received.
#[derive(Default)]
pub struct EchoSink {
    received: Mutex<VecDeque<Received>>,
}

#[derive(Clone, Serialize)]
struct Received {
    /// Path and query string, as requested.
    uri: String,
    headers: Vec<(String, String)>,
    body: String,
}

pub(super) async fn record(
    req: HttpRequest,
    body: web::Bytes,
    sink: web::Data<EchoSink>,
) -> HttpResponse {
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter(|(n, _)| {
            let n = n.as_str();
            n.starts_with("ce-") || n.starts_with("x-") || n == "content-type"
        })
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = String::from_utf8_lossy(&body).into_owned();
    let summary: Vec<String> = headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
    let uri = req.uri().to_string();
    println!(
        "echo target received {uri}: {}\n  {body}\n",
        summary.join(" | ")
    );
    let mut received = sink.received.lock().expect("echo lock");
    if received.len() == KEEP {
        received.pop_front();
    }
    received.push_back(Received { uri, headers, body });
    HttpResponse::NoContent().finish()
}

pub(super) async fn list(sink: web::Data<EchoSink>) -> HttpResponse {
    let received: Vec<Received> = sink
        .received
        .lock()
        .expect("echo lock")
        .iter()
        .cloned()
        .collect();
    HttpResponse::Ok().json(received)
}

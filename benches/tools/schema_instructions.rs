//! Validates the schema benchmark's order data N times in one way, for counting
//! instructions with callgrind (repeatable whatever else the machine is doing):
//!
//! ```sh
//! cargo build --release --example schema-instructions
//! for mode in tape value tape-parse value-parse; do for n in 0 10000; do
//!   echo "$mode $n: $(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/schema-instructions $mode $n 2>&1 | grep -o 'Collected : [0-9]*')"
//! done; done
//! ```
//!
//! Instructions per event = (count with 10000 - count with 0) / 10000. Modes: `tape`
//! (what ingest does: `Version::check_json`), `value` (parse into a `serde_json::Value`,
//! then validate), `tape-parse` and `value-parse` (the parsing alone); `gate-enforce` and
//! `gate-off`: the whole ingest-side check (`SchemaGate::check`) of the load benchmark's
//! event (`benches/load/batch.lua`) on its buses `checked` and `ingest`
//! (`benches/load/bench.yaml`).

#[path = "../support/schema_order.rs"]
mod order;

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use sluice::event::cloudevents::parse_structured;
use sluice::observability::metrics::Metrics;
use sluice::schema::gate::{Entrance, SchemaGate};
use sluice::schema::tape::Doc;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(mode), Some(Ok(n))) = (args.next(), args.next().map(|n| n.parse::<u64>())) else {
        eprintln!("usage: schema-instructions tape|value|tape-parse|value-parse N");
        std::process::exit(2);
    };
    let version = order::version();
    let data = order::data(true);
    let bytes = data.as_bytes();
    let plan = sluice::plan::Plan::parse(include_str!("../load/bench.yaml")).expect("bench.yaml");
    let (gate, _) = SchemaGate::from_plan(&plan, Arc::new(Metrics::new()));
    let event = parse_structured(&Bytes::from(format!(
        r#"{{"specversion":"1.0","id":"e-1","source":"/bench","type":"order.paid","datacontenttype":"application/json","data":{{"order":{{"id":"o-1","amount":120.5,"currency":"EUR","note":"{}"}}}}}}"#,
        "x".repeat(360)
    )))
    .expect("the load event");
    let mut valid = 0;
    for _ in 0..n {
        let ok = match mode.as_str() {
            "tape" => version.check_json(bytes).is_ok(),
            "value" => version.is_valid(&serde_json::from_slice::<Value>(bytes).unwrap()),
            "tape-parse" => Doc::parse(bytes).is_some(),
            "value-parse" => serde_json::from_slice::<Value>(bytes).is_ok(),
            "gate-enforce" | "gate-off" => {
                let bus = if mode == "gate-off" {
                    "ingest"
                } else {
                    "checked"
                };
                let mut e = event.clone();
                gate.check(bus, Entrance::CloudEvents, &mut e).is_ok()
            }
            _ => {
                eprintln!("unknown mode {mode}");
                std::process::exit(2);
            }
        };
        valid += u64::from(ok);
    }
    assert_eq!(valid, n, "every event is valid");
    println!("{valid} valid");
}

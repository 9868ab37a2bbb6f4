//! The rule sets and events of the pattern benchmarks, shared by `benches/patterns.rs`
//! (criterion, wall time) and `benches/tools/pattern_instructions.rs` (for callgrind).

use serde_json::{json, Value};
use sluice::rules::{EventData, EventView, Matcher, Pattern};

/// xorshift64: deterministic rule sets and events.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub const COUNTRIES: [&str; 6] = ["DE", "FR", "NL", "US", "JP", "BR"];

/// Rule `i` of a set of `n`: six kinds in turn, each keyed on a value space of size ~n.
pub fn rule(i: u64, n: u64, rng: &mut Rng) -> Value {
    let k = rng.below(n);
    match i % 6 {
        0 => {
            json!({"tenant": [format!("t{k}")], "type": ["com.example.order.paid", "com.example.order.refunded"]})
        }
        1 => json!({"source": [{"prefix": format!("https://shop{k}.example.com/")}]}),
        2 => {
            json!({"subject": [{"suffix": format!("/orders/{k}")}], "type": [{"prefix": "com.example."}]})
        }
        3 => json!({"data": {
            "customer": {"id": [format!("c-{k}")]},
            "order": {"total": [{"numeric": [">=", rng.below(500), "<", 500 + rng.below(500)]}]}
        }}),
        4 => json!({"data": {
            "customer": {"email": [{"suffix": format!("@corp{k}.example")}]},
            "order": {"currency": [{"anything-but": ["EUR", "GBP"]}]}
        }}),
        _ => {
            json!({"data": {"shipping": {"ip": [{"cidr": format!("10.{}.{}.0/24", k / 256 % 256, k % 256)}]}},
                    "type": [{"anything-but": {"prefix": "com.example.test."}}]})
        }
    }
}

/// A ~1 KB order event whose keys are drawn from the same spaces as the rules.
pub fn event(n: u64, rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
    let email = format!("zoe@corp{}.example", rng.below(n));
    event_with_email(n, rng, email)
}

pub fn event_with_email(n: u64, rng: &mut Rng, email: String) -> (Vec<u8>, Vec<u8>) {
    let k = |rng: &mut Rng| rng.below(n);
    let attrs = json!({
        "specversion": "1.0",
        "id": format!("4f6b1c2e-8a11-4c55-9d0e-{:012}", rng.below(1 << 40)),
        "source": format!("https://shop{}.example.com/eu-west", k(rng)),
        "type": "com.example.order.paid",
        "subject": format!("shop/orders/{}", k(rng)),
        "time": "2026-11-23T10:00:00Z",
        "datacontenttype": "application/json",
        "tenant": format!("t{}", k(rng)),
    });
    let lines: Vec<Value> = (0..4)
        .map(|i| json!({"sku": format!("SKU-{:04}", rng.below(10_000)), "name": format!("Item number {i}"), "qty": 1 + rng.below(5), "price": 9.99 + i as f64}))
        .collect();
    let ip_key = k(rng);
    let data = json!({
        "order": {"id": format!("o-{}", rng.below(1 << 30)), "currency": if rng.below(2) == 0 { "EUR" } else { "USD" },
                  "total": rng.below(1000) as f64 + 0.5, "lines": lines},
        "customer": {"id": format!("c-{}", k(rng)), "name": "Zoë Example", "tier": "gold",
                     "email": email, "country": COUNTRIES[rng.below(6) as usize]},
        "shipping": {"ip": format!("10.{}.{}.{}", ip_key / 256 % 256, ip_key % 256, rng.below(256)),
                     "address": {"street": "1 Example Street", "city": "Amsterdam", "postcode": "1011 AB"}},
        "tags": ["web", "promo", "eu"],
    });
    (
        serde_json::to_vec(&attrs).unwrap(),
        serde_json::to_vec(&data).unwrap(),
    )
}

/// Matches one event; returns how many rules matched.
pub fn match_one(
    matcher: &Matcher,
    (attrs, data): &(Vec<u8>, Vec<u8>),
    out: &mut Vec<usize>,
) -> usize {
    out.clear();
    let event = EventView {
        attrs,
        data: EventData::Json(data),
    };
    matcher.matching(&event, out);
    out.len()
}

pub fn compile(patterns: &[Value]) -> Matcher {
    Matcher::new(
        patterns
            .iter()
            .map(|p| Pattern::parse(p).unwrap())
            .collect(),
    )
}

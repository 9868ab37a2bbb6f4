// Sluice's matcher vs the quamina crate (0.6), one thread, same rules and events.
//
// Reproduce:
//   cd benches/quamina-cmp && cargo run --release
// Optional: EVENTS=200000 (events per run) REPEATS=3 (runs per engine, alternating).
//
// Rules and events follow benches/patterns.rs. Sluice gets the attributes and
// the data as two JSON documents; quamina gets one document, the attributes object with a
// "data" member holding the same data bytes. Both use mimalloc, as the gateway does.
//
// The bench's sixth rule kind (cidr + {"anything-but": {"prefix": ...}}) is left out of
// the mixed set: quamina's anything-but takes only a string, a number or a list of them.

use std::hint::black_box;
use std::time::{Duration, Instant};

use quamina::Quamina;
use serde_json::{json, Value};
use sluice::rules::{EventData, EventView, Matcher, Pattern};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// xorshift64, as in the bench.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const COUNTRIES: [&str; 6] = ["DE", "FR", "NL", "US", "JP", "BR"];

/// The bench's rule kinds 0..=4 (exact, prefix, suffix, exact + numeric, suffix + anything-but).
fn rule(i: u64, n: u64, rng: &mut Rng) -> Value {
    let k = rng.below(n);
    match i % 5 {
        0 => json!({"tenant": [format!("t{k}")], "type": ["com.example.order.paid", "com.example.order.refunded"]}),
        1 => json!({"source": [{"prefix": format!("https://shop{k}.example.com/")}]}),
        2 => json!({"subject": [{"suffix": format!("/orders/{k}")}], "type": [{"prefix": "com.example."}]}),
        3 => json!({"data": {
            "customer": {"id": [format!("c-{k}")]},
            "order": {"total": [{"numeric": [">=", rng.below(500), "<", 500 + rng.below(500)]}]}
        }}),
        _ => json!({"data": {
            "customer": {"email": [{"suffix": format!("@corp{k}.example")}]},
            "order": {"currency": [{"anything-but": ["EUR", "GBP"]}]}
        }}),
    }
}

/// The bench's ~800-byte order event: (attributes, data) as JSON.
fn event(n: u64, rng: &mut Rng) -> (Value, Value) {
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
                     "email": format!("zoe@corp{}.example", k(rng)), "country": COUNTRIES[rng.below(6) as usize]},
        "shipping": {"ip": format!("10.{}.{}.{}", ip_key / 256 % 256, ip_key % 256, rng.below(256)),
                     "address": {"street": "1 Example Street", "city": "Amsterdam", "postcode": "1011 AB"}},
        "tags": ["web", "promo", "eu"],
    });
    (attrs, data)
}

/// One comparison: a rule set and 256 events.
struct Case {
    name: String,
    patterns: Vec<Value>,
    events: Vec<(Value, Value)>,
}

fn mixed(n: u64) -> Case {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ n);
    let patterns = (0..n).map(|i| rule(i, n, &mut rng)).collect();
    let events = (0..256).map(|_| event(n, &mut rng)).collect();
    Case { name: format!("(a) mixed, {n} rules"), patterns, events }
}

/// n distinct prefixes on data.customer.email, as in the bench's `prefixes` group; here
/// every other event's email starts with one of them, so half the events match.
fn prefixes(n: u64) -> Case {
    let mut rng = Rng(7 + n);
    let prefixes: Vec<String> = (0..n).map(|i| format!("user{i}-{}", rng.below(1000))).collect();
    let patterns = prefixes.iter().map(|p| json!({"data": {"customer": {"email": [{"prefix": p}]}}})).collect();
    let events = (0..256)
        .map(|j| {
            let (attrs, mut data) = event(n, &mut rng);
            if j % 2 == 0 {
                let p = &prefixes[rng.below(n) as usize];
                data["customer"]["email"] = json!(format!("{p}@corp.example"));
            }
            (attrs, data)
        })
        .collect();
    Case { name: format!("(b) prefixes on one field, {n} rules"), patterns, events }
}

/// n exact values on data.customer.id ("c-0" .. "c-{n-1}"); events draw their id from the
/// same space, so each matches one rule.
fn exact(n: u64) -> Case {
    let mut rng = Rng(11 + n);
    let patterns = (0..n).map(|i| json!({"data": {"customer": {"id": [format!("c-{i}")]}}})).collect();
    let events = (0..256).map(|_| event(n, &mut rng)).collect();
    Case { name: format!("(c) exact values on one field, {n} rules"), patterns, events }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let n_events = env("EVENTS", 200_000);
    let repeats = env("REPEATS", 3);
    let cases = vec![mixed(10), mixed(1_000), mixed(10_000), prefixes(10), prefixes(10_000), exact(10), exact(10_000)];

    let mut rows = Vec::new();
    for case in &cases {
        // Sluice: attributes and data as two documents.
        let started = Instant::now();
        let sluice = Matcher::new(case.patterns.iter().map(|p| Pattern::parse(p).unwrap()).collect());
        let sluice_compile = started.elapsed();
        let split: Vec<(Vec<u8>, Vec<u8>)> = case
            .events
            .iter()
            .map(|(a, d)| (serde_json::to_vec(a).unwrap(), serde_json::to_vec(d).unwrap()))
            .collect();

        // quamina: one document, `{...attributes, "data": <the same data bytes>}`.
        let texts: Vec<String> = case.patterns.iter().map(|p| p.to_string()).collect();
        let started = Instant::now();
        let mut quamina = Quamina::<u32>::new();
        for (i, p) in texts.iter().enumerate() {
            quamina.add_pattern(i as u32, p).unwrap_or_else(|e| panic!("quamina rejects {p}: {e}"));
        }
        let quamina_compile = started.elapsed();
        let whole: Vec<Vec<u8>> = split
            .iter()
            .map(|(a, d)| [&a[..a.len() - 1], b",\"data\":", d, b"}"].concat())
            .collect();

        // Same matches, event by event?
        let (mut sluice_total, mut quamina_total, mut differing) = (0, 0, 0);
        let mut out = Vec::new();
        for (j, ((attrs, data), doc)) in split.iter().zip(&whole).enumerate() {
            out.clear();
            sluice.matching(&EventView { attrs, data: EventData::Json(data) }, &mut out);
            out.sort_unstable();
            let mut q: Vec<usize> = quamina.matches_for_event(doc).unwrap().into_iter().map(|x| x as usize).collect();
            q.sort_unstable();
            sluice_total += out.len();
            quamina_total += q.len();
            if out != q {
                differing += 1;
                if differing <= 3 {
                    eprintln!("{}: event {j} differs: sluice {out:?}, quamina {q:?}", case.name);
                    for &r in out.iter().chain(&q) {
                        eprintln!("  rule {r}: {}", texts[r]);
                    }
                    eprintln!("  event: {}", String::from_utf8_lossy(doc));
                }
            }
        }

        // Throughput: `repeats` runs of `n_events` each, alternating engines (and which goes first).
        let run_sluice = || {
            let mut out = Vec::new();
            let started = Instant::now();
            for i in 0..n_events {
                let (attrs, data) = &split[i % split.len()];
                out.clear();
                sluice.matching(&EventView { attrs, data: EventData::Json(data) }, &mut out);
                black_box(out.len());
            }
            n_events as f64 / started.elapsed().as_secs_f64()
        };
        let run_quamina = || {
            let started = Instant::now();
            for i in 0..n_events {
                black_box(quamina.matches_for_event(&whole[i % whole.len()]).unwrap().len());
            }
            n_events as f64 / started.elapsed().as_secs_f64()
        };
        let (mut s, mut q) = (Vec::new(), Vec::new());
        for r in 0..repeats {
            if r % 2 == 0 {
                s.push(run_sluice());
                q.push(run_quamina());
            } else {
                q.push(run_quamina());
                s.push(run_sluice());
            }
        }
        let size = whole.iter().map(Vec::len).sum::<usize>() / whole.len();
        eprintln!(
            "{}: sluice {:?} ev/s, quamina {:?} ev/s, ~{size} B/event, compile sluice {sluice_compile:.2?} quamina {quamina_compile:.2?}",
            case.name,
            s.iter().map(|x| *x as u64).collect::<Vec<_>>(),
            q.iter().map(|x| *x as u64).collect::<Vec<_>>()
        );
        rows.push((case.name.clone(), median(s), median(q), sluice_total, quamina_total, differing, sluice_compile, quamina_compile));
    }

    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    println!("\n{n_events} events per run, median of {repeats} alternating runs, one thread.\n");
    println!("| case | Sluice ev/s | quamina ev/s | Sluice / quamina | matches on 256 events (Sluice / quamina) | events differing | compile Sluice / quamina |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, s, q, st, qt, diff, sc, qc) in rows {
        println!(
            "| {name} | {:.0} | {:.0} | {:.2}x | {st} / {qt} | {diff} | {} / {} |",
            s,
            q,
            s / q,
            ms(sc),
            ms(qc)
        );
    }
}

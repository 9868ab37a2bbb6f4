//! `stripe-payment`: turns Stripe's `payment_intent.succeeded` into the follow-up event
//! of an order system, "order paid", for Sluice to chain onto a bus (`on_success`).
//!
//! It takes the Stripe event in any of the shapes it can arrive in: a CloudEvent (what
//! Sluice's `function` target sends: `type: com.stripe.payment_intent.succeeded`, the
//! Stripe event in `data`), an EventBridge event (Stripe's EventBridge integration:
//! the Stripe event in `detail`), or the bare Stripe event. Other event types answer
//! `null`, which Sluice chains nothing for.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};

/// The Stripe event, out of its envelope.
fn stripe_event(event: &Value) -> &Value {
    if event.get("specversion").is_some() {
        &event["data"]
    } else if event.get("detail-type").is_some() {
        &event["detail"]
    } else {
        event
    }
}

/// The part of a PaymentIntent this function reads.
#[derive(Debug, Deserialize)]
struct PaymentIntent {
    id: String,
    amount: i64,
    #[serde(default)]
    amount_received: Option<i64>,
    currency: String,
    #[serde(default)]
    customer: Option<String>,
    #[serde(default)]
    receipt_email: Option<String>,
    #[serde(default)]
    metadata: serde_json::Map<String, Value>,
}

/// Currencies Stripe counts in whole units (no minor unit).
const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];

/// `2000, "usd"` -> `"20.00 USD"`; `500, "jpy"` -> `"500 JPY"`.
fn display_amount(minor: i64, currency: &str) -> String {
    let code = currency.to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&currency.to_ascii_lowercase().as_str()) {
        return format!("{minor} {code}");
    }
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02} {code}", abs / 100, abs % 100)
}

fn order_paid(event: &Value) -> Result<Value, Error> {
    let intent: PaymentIntent = serde_json::from_value(event["data"]["object"].clone())
        .map_err(|e| format!("data.object is not a PaymentIntent: {e}"))?;
    let amount = intent.amount_received.unwrap_or(intent.amount);
    Ok(json!({
        "order_id": intent.metadata.get("order_id"),
        "payment_intent": intent.id,
        "amount": amount,
        "currency": intent.currency,
        "amount_display": display_amount(amount, &intent.currency),
        "customer": intent.customer,
        "receipt_email": intent.receipt_email,
        "stripe_event": event["id"],
        "livemode": event["livemode"].as_bool().unwrap_or(false),
        "status": "paid",
    }))
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let stripe = stripe_event(&event.payload);
    match stripe["type"].as_str() {
        Some("payment_intent.succeeded") => order_paid(stripe),
        Some(_) => Ok(Value::Null),
        None => Err("not a Stripe event: no `type`".into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Context;

    fn succeeded() -> Value {
        json!({
            "id": "evt_1", "object": "event", "type": "payment_intent.succeeded", "livemode": false,
            "data": {"object": {
                "id": "pi_1", "object": "payment_intent", "amount": 2000, "amount_received": 2000,
                "currency": "usd", "customer": "cus_9", "receipt_email": "a@example.com",
                "metadata": {"order_id": "o-42"}
            }}
        })
    }

    async fn run(payload: Value) -> Result<Value, Error> {
        handle(LambdaEvent::new(payload, Context::default())).await
    }

    #[tokio::test]
    async fn a_succeeded_payment_becomes_order_paid() {
        let ce = json!({"specversion": "1.0", "id": "evt_1", "source": "https://api.stripe.com",
                        "type": "com.stripe.payment_intent.succeeded", "data": succeeded()});
        let out = run(ce).await.unwrap();
        assert_eq!(out["order_id"], "o-42");
        assert_eq!(out["amount_display"], "20.00 USD");
        assert_eq!(out["stripe_event"], "evt_1");
        assert_eq!(out["status"], "paid");
        // EventBridge and bare shapes give the same answer.
        let eb = json!({"detail-type": "payment_intent.succeeded", "detail": succeeded()});
        assert_eq!(run(eb).await.unwrap(), out);
        assert_eq!(run(succeeded()).await.unwrap(), out);
    }

    #[tokio::test]
    async fn other_stripe_events_chain_nothing() {
        let mut ev = succeeded();
        ev["type"] = json!("invoice.paid");
        assert_eq!(run(ev).await.unwrap(), Value::Null);
    }

    #[tokio::test]
    async fn a_broken_payment_intent_is_an_error() {
        let mut ev = succeeded();
        ev["data"]["object"]["amount"] = json!("lots");
        let err = run(ev).await.unwrap_err().to_string();
        assert!(err.contains("PaymentIntent"), "{err}");
        assert!(run(json!({"hello": 1})).await.is_err());
    }

    #[test]
    fn amounts_in_minor_and_zero_decimal_units() {
        assert_eq!(display_amount(2000, "usd"), "20.00 USD");
        assert_eq!(display_amount(5, "eur"), "0.05 EUR");
        assert_eq!(display_amount(-150, "gbp"), "-1.50 GBP");
        assert_eq!(display_amount(500, "jpy"), "500 JPY");
    }
}

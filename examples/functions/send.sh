#!/usr/bin/env bash
# Sends a signed Stripe payment_intent.succeeded webhook (needs openssl) and a GitHub push
# as a CloudEvent, then shows what the function chain produced: `sluice dev` prints each
# follow-up event (order.paid, code.summary) that reached the /dev/echo "FaaS".
# Also calls a hosted function directly through the Lambda Invoke API.
set -euo pipefail
base=${SLUICE_URL:-http://127.0.0.1:8080}
here=$(dirname "$0")

payment=$(tr -d '\n' < "$here/payment_intent.succeeded.json")
t=$(date +%s)
sig=$(printf '%s' "$t.$payment" | openssl dgst -sha256 -hmac 'whsec_example_secret' -r | cut -d' ' -f1)
curl -sS -i "$base/webhooks/stripe" -H 'content-type: application/json' \
  -H "stripe-signature: t=$t,v1=$sig" -d "$payment"
echo

curl -sS -i "$base/buses/code/events" -H 'content-type: application/cloudevents+json' \
  --data-binary @"$here/push.json"
echo

# The Lambda Invoke API (what `aws lambda invoke --endpoint-url $base` calls).
curl -sS -i "$base/2015-03-31/functions/echo/invocations" -d '{"hello": "world"}'
echo

sleep 1
curl -sS "$base/dev/echo"
echo

#!/usr/bin/env bash
# Signs and sends a GitHub push and a Stripe invoice.paid the way the providers do
# (needs openssl), then repeats the GitHub delivery: the second answer is 200 duplicate.
set -euo pipefail
base=${SLUICE_URL:-http://127.0.0.1:8080}

push='{"ref":"refs/heads/main","repository":{"full_name":"acme/shop"},"head_commit":{"message":"Fix totals"}}'
sig=$(printf '%s' "$push" | openssl dgst -sha256 -hmac 'example-github-secret' -r | cut -d' ' -f1)
for attempt in 1 2; do
  curl -sS -i "$base/webhooks/github" -H 'content-type: application/json' \
    -H 'x-github-event: push' -H 'x-github-delivery: 5f1b7c3e-0000-4000-8000-000000000001' \
    -H "x-hub-signature-256: sha256=$sig" -d "$push"
  echo
done

invoice='{"id":"evt_example_1","object":"event","type":"invoice.paid","created":1700000000,"data":{"object":{"amount_paid":4250}}}'
t=$(date +%s)
sig=$(printf '%s' "$t.$invoice" | openssl dgst -sha256 -hmac 'whsec_example_new' -r | cut -d' ' -f1)
curl -sS -i "$base/webhooks/stripe" -H 'content-type: application/json' \
  -H "stripe-signature: t=$t,v1=$sig" -d "$invoice"
echo

# A wrong signature: 401, and nothing is appended.
curl -sS -i "$base/webhooks/stripe" -H 'content-type: application/json' \
  -H "stripe-signature: t=$t,v1=00" -d "$invoice"
echo

#!/bin/sh
# Sends valid and invalid events to `sluice dev --config examples/schemas/sluice.yaml`.
set -u
URL=${SLUICE_URL:-http://127.0.0.1:8080}
ce() { curl -s -w ' -> %{http_code}\n' -X POST "$URL/buses/$1/events" \
  -H 'content-type: application/cloudevents+json' -d "$2"; }

echo "# a valid order (version 2 of order-created)"
ce orders '{"specversion":"1.0","id":"o-1","source":"/shop","type":"order.created","data":{"id":"o-1","amount":12.5,"currency":"EUR","coupon":null}}'
echo "# an invalid order: refused with every violation"
ce orders '{"specversion":"1.0","id":"o-2","source":"/shop","type":"order.created","data":{"id":2,"amount":-1,"currency":"GBP"}}'
echo "# an order with a coupon pinned to version 1 (no coupon there) with dataschema: refused"
ce orders '{"specversion":"1.0","id":"o-3","source":"/shop","type":"order.created","dataschema":"https://schemas.example.com/order-created/1","data":{"id":"o-3","amount":1,"currency":"USD","coupon":"X"}}'
echo "# an invalid payment: accepted, marked, and routed to the echo target"
ce payments '{"specversion":"1.0","id":"p-1","source":"/pay","type":"payment.received","data":{"id":"p-1","amount":0,"payer":{"email":"nobody"}}}'
echo "# the schemas (config and discovered)"
curl -s "$URL/api/v1/schemas"; echo

#!/usr/bin/env bash
# Sends one order.paid event to the transforms example.
set -euo pipefail
curl -sS -i http://127.0.0.1:8080/buses/orders/events \
  -H 'content-type: application/cloudevents+json' \
  -d '{"specversion": "1.0", "id": "order-1001", "source": "/shop", "type": "order.paid",
       "datacontenttype": "application/json",
       "data": {"order": {"id": "o-1001", "total": 42.50}, "customer": {"id": "c-7", "name": "Zoë"}}}'
echo

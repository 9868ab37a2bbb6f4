#!/usr/bin/env bash
# Publishes two order events at the IDC gateway (one created, one paid).
set -euo pipefail
curl -sS http://127.0.0.1:8080/buses/orders/events \
  -H 'content-type: application/cloudevents-batch+json' \
  -d '[{"specversion":"1.0","id":"idc-1","source":"/erp","type":"order.created","data":{"order":"idc-1"}},
       {"specversion":"1.0","id":"idc-2","source":"/erp","type":"order.paid","data":{"order":"idc-2","amount":99.5}}]'
echo

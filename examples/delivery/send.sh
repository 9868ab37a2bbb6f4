#!/usr/bin/env bash
# Sends 3 payments for each of two accounts (as one batch) to the delivery example.
# The `ordered` target delivers each account's payments in this order; the `partner`
# target takes at least (6 - 5) / 5 s: its burst is 5, then 5 per second.
set -euo pipefail
events=""
for seq in 1 2 3; do
  for account in acct-1 acct-2; do
    events+="{\"specversion\":\"1.0\",\"id\":\"$account-$seq\",\"source\":\"/payments\",\"type\":\"payment.settled\",\"subject\":\"$account\",\"data\":{\"seq\":$seq}},"
  done
done
curl -sS -i http://127.0.0.1:8080/buses/payments/events \
  -H 'content-type: application/cloudevents-batch+json' \
  -d "[${events%,}]"
echo

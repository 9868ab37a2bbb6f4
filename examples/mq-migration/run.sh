#!/usr/bin/env bash
# Runs examples/mq-migration against this machine's RabbitMQ (127.0.0.1:5672,
# guest/guest), Mosquitto (1883) and PostgreSQL (5432, database test): starts a
# redis-server of its own (port $REDIS_PORT, default 6393), the Alibaba stub (8096) and
# Sluice (8095), sends two ERP orders over AMQP and two sensor readings over MQTT 5 (as
# binary-mode CloudEvents of each transport's binding), and checks what arrived: the
# orders in the table mq_migration_orders, the paid one at "Alibaba", one alert for the
# hot reading. Exits non-zero if anything is missing.
#
#   bash examples/mq-migration/run.sh                      # with `cargo run`
#   SLUICE=target/debug/sluice bash examples/mq-migration/run.sh
set -euo pipefail
SLUICE=${SLUICE:-}
if [ -n "$SLUICE" ]; then SLUICE=$(realpath "$SLUICE"); fi
cd "$(dirname "$0")"
REDIS_PORT=${REDIS_PORT:-6393}
dir=$(mktemp -d)
pids=()
cleanup() {
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; done
  amqp-delete-queue -u amqp://guest:guest@127.0.0.1:5672 -q mq-migration-orders >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
psql() { command psql -h 127.0.0.1 -U postgres -d test -v ON_ERROR_STOP=1 -qAt "$@"; }

psql -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS mq_migration_orders" \
     -c "CREATE TABLE mq_migration_orders (id text PRIMARY KEY, order_id text, state text, amount numeric, at timestamptz)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null &
pids+=($!)
python3 ../idc-to-cloud/alibaba_stub.py 8096 > "$dir/aliyun.log" &
pids+=($!)
if [ -n "$SLUICE" ]; then
  "$SLUICE" serve --config sluice.yaml --redis "redis://127.0.0.1:$REDIS_PORT" > "$dir/sluice.log" 2>&1 &
else
  cargo run -q -- serve --config sluice.yaml --redis "redis://127.0.0.1:$REDIS_PORT" > "$dir/sluice.log" 2>&1 &
fi
pids+=($!)
for _ in $(seq 1 600); do curl -sf http://127.0.0.1:8095/readyz >/dev/null && break; sleep 0.2; done
# The alert subscriber first, then give the connectors a moment to subscribe.
mosquitto_sub -h 127.0.0.1 -V mqttv5 -q 1 -t mq-migration/alerts -C 1 -W 30 > "$dir/alerts.txt" &
sub=$!
sleep 2

# The ERP: orders as binary-mode CloudEvents in the AMQP binding (cloudEvents_* properties).
order() { # ID TYPE BODY
  amqp-publish -u amqp://guest:guest@127.0.0.1:5672 -r mq-migration-orders -p -C application/json \
    -H "cloudEvents_specversion: 1.0" -H "cloudEvents_id: $1" -H "cloudEvents_source: /erp" \
    -H "cloudEvents_type: $2" -H "cloudEvents_time: 2026-12-03T10:00:00Z" -b "$3"
}
order erp-1 order.created '{"order": "A-1", "amount": 120.50}'
order erp-2 order.paid '{"order": "A-1", "amount": 120.50}'
# The plant: readings as MQTT 5 binary-mode CloudEvents (user properties).
reading() { # ID SENSOR CELSIUS
  mosquitto_pub -h 127.0.0.1 -V mqttv5 -q 1 -t "mq-migration/sensors/$2" \
    -D publish user-property specversion 1.0 -D publish user-property id "$1" \
    -D publish user-property source /plant/hall-1 -D publish user-property type sensor.reading \
    -D publish user-property subject "$2" -D publish content-type application/json \
    -m "{\"celsius\": $3}"
}
reading s-1 boiler 34.5
reading s-2 fridge 4.0

ok=true
for _ in $(seq 1 100); do
  [ "$(psql -c 'SELECT count(*) FROM mq_migration_orders')" = 2 ] && grep -q erp-2 "$dir/aliyun.log" && break
  sleep 0.2
done
wait "$sub" || true
echo "--- PostgreSQL: mq_migration_orders"
psql -c "SELECT id, order_id, state, amount, at FROM mq_migration_orders ORDER BY id" | tee "$dir/rows.txt"
echo "--- Alibaba Cloud EventBridge (stub)"
cat "$dir/aliyun.log"
echo "--- MQTT mq-migration/alerts"
cat "$dir/alerts.txt"
grep -q '^erp-1|A-1|order.created|120.50|' "$dir/rows.txt" || { echo "MISSING: erp-1 in the table"; ok=false; }
grep -q '^erp-2|A-1|order.paid|120.50|' "$dir/rows.txt" || { echo "MISSING: erp-2 in the table"; ok=false; }
grep -q 'aliyun got erp-2 order.paid' "$dir/aliyun.log" || { echo "MISSING: erp-2 at Alibaba"; ok=false; }
grep -q '"alert": "sensor boiler at 34.5 C"' "$dir/alerts.txt" || { echo "MISSING: the boiler alert"; ok=false; }
if ! $ok; then echo "--- sluice log"; cat "$dir/sluice.log"; exit 1; fi
echo "OK: every event arrived where the rules send it"

#!/usr/bin/env bash
# MQTT connector and target throughput (docs/connectors/mqtt.md), against a running
# gateway binary. Needs redis-server, redis-cli, mosquitto, mosquitto_pub, mosquitto_sub,
# curl and awk. Starts its own redis-server ($REDIS_PORT), its own mosquitto ($MQTT_PORT,
# unlimited offline queue) and the gateway ($HTTP_PORT); touches no other service.
#
#   SLUICE=target/release/sluice bash benches/load/connector_mqtt.sh
#   SLUICE=target/debug/sluice N=10000 bash benches/load/connector_mqtt.sh
#
# in:  N structured CloudEvents are queued in the broker for the connector's persistent
#      session while the gateway is stopped; then the gateway starts and the time until
#      the bus holds all N is measured (broker -> bus: receive, append, PUBACK).
# out: N events are posted over HTTP (batches of 100) to a bus whose rule publishes to
#      an MQTT topic; the time from the first post until a subscriber got all N is
#      measured (bus -> broker: route, publish QoS 1, PUBACK, XACK).
set -euo pipefail
cd "$(dirname "$0")/../.."
SLUICE=${SLUICE:-target/release/sluice}
N=${N:-20000}
REDIS_PORT=${REDIS_PORT:-6391}
MQTT_PORT=${MQTT_PORT:-18830}
HTTP_PORT=${HTTP_PORT:-8093}
dir=$(mktemp -d)
pids=()
cleanup() { for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
now() { date +%s.%N; }
rate() { awk -v n="$1" -v s="$2" -v e="$3" 'BEGIN { printf "%d events in %.2f s: %.0f events/s\n", n, e - s, n / (e - s) }'; }

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null &
pids+=($!)
cat > "$dir/mosquitto.conf" <<EOF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
max_queued_messages 0
EOF
mosquitto -c "$dir/mosquitto.conf" 2>/dev/null &
pids+=($!)
cat > "$dir/sluice.yaml" <<EOF
gateway_id: bench
buses: [{name: in}, {name: out}]
connectors:
  - {name: mqtt-in, kind: mqtt, bus: in, url: "mqtt://127.0.0.1:$MQTT_PORT", topic: bench/in, batch: 500}
rules:
  - name: to-mqtt
    bus: out
    targets:
      - {name: mqtt-out, kind: mqtt, url: "mqtt://127.0.0.1:$MQTT_PORT", topic: bench/out, concurrency: 256}
EOF
sleep 0.5
start_gateway() {
  RUST_LOG=warn "$SLUICE" serve --config "$dir/sluice.yaml" --listen "127.0.0.1:$HTTP_PORT" \
    --redis "redis://127.0.0.1:$REDIS_PORT" &
  gateway=$!
  until curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null; do sleep 0.1; done
}
echo "machine: $(nproc) cores; $SLUICE; broker, Redis, gateway and clients share the cores"

echo "== in: broker -> bus, $N structured events of ~300 bytes"
start_gateway
sleep 1 # the connector's session now exists
kill "$gateway"; wait "$gateway" 2>/dev/null || true
awk -v n="$N" 'BEGIN { pad = sprintf("%200s", ""); gsub(/ /, "x", pad);
  for (i = 0; i < n; i++) printf "{\"specversion\":\"1.0\",\"id\":\"in-%d\",\"source\":\"/bench\",\"type\":\"bench\",\"data\":{\"i\":%d,\"pad\":\"%s\"}}\n", i, i, pad }' \
  > "$dir/in.txt"
mosquitto_pub -p "$MQTT_PORT" -q 1 -V 5 -t bench/in -l < "$dir/in.txt"
start=$(now)
start_gateway
pids+=("$gateway")
until [ "$(redis-cli -p "$REDIS_PORT" xlen 'sluice:{in}:events')" -ge "$N" ]; do sleep 0.05; done
rate "$N" "$start" "$(now)"

echo "== out: HTTP -> bus -> MQTT topic, $N events of ~300 bytes, concurrency 256"
awk -v n="$N" -v d="$dir" 'BEGIN { pad = sprintf("%200s", ""); gsub(/ /, "x", pad);
  for (b = 0; b * 100 < n; b++) { f = sprintf("%s/out-%05d.json", d, b); printf "[" > f;
    for (i = b * 100; i < n && i < (b + 1) * 100; i++) printf "%s{\"specversion\":\"1.0\",\"id\":\"out-%d\",\"source\":\"/bench\",\"type\":\"bench\",\"datacontenttype\":\"application/json\",\"data\":{\"i\":%d,\"pad\":\"%s\"}}", (i > b * 100 ? "," : ""), i, i, pad > f;
    printf "]" > f; close(f) } }'
mosquitto_sub -p "$MQTT_PORT" -q 1 -V 5 -t bench/out -C "$N" > /dev/null &
sub=$!
sleep 0.5
start=$(now)
# Four posting clients at once, so the ingest is not what is measured.
find "$dir" -maxdepth 1 -name "out-*.json" -print0 | xargs -0 -P 4 -I{} curl -sf -o /dev/null \
  -H 'content-type: application/cloudevents-batch+json' \
  --data-binary "@{}" "http://127.0.0.1:$HTTP_PORT/buses/out/events"
ingested=$(now)
wait "$sub"
end=$(now)
echo -n "ingest over HTTP: "; rate "$N" "$start" "$ingested"
echo -n "end to end (first post -> last PUBLISH received): "; rate "$N" "$start" "$end"

#!/usr/bin/env bash
# Events/s through the Redis connector (another Redis -> bus) and the Redis target
# (bus -> another Redis), for docs/connectors/redis.md. Starts two redis-servers of its
# own (6391: the gateway's, 6392: the "other" Redis) and the gateway binary $SLUICE
# (default target/release/sluice) on 8094.
#
#   bash benches/load/connector_redis.sh                       # 50,000 events each way
#   EVENTS=200000 SLUICE=target/debug/sluice bash benches/load/connector_redis.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
EVENTS=${EVENTS:-50000}
SLUICE=${SLUICE:-target/release/sluice}
dir=$(mktemp -d)
pids=()
cleanup() { for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
for port in 6391 6392; do
  redis-server --port $port --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null &
  pids+=($!)
done
sleep 0.5
cat > "$dir/sluice.yaml" <<YAML
listen: 127.0.0.1:8094
buses: [{name: in}, {name: out}]
connectors:
  - {name: other, kind: redis, bus: in, url: "redis://127.0.0.1:6392", stream: source, batch: 500, dedupe: 1h}
rules:
  - name: copy
    bus: out
    targets:
      - {name: other, kind: redis, url: "redis://127.0.0.1:6392", stream: sink, concurrency: 64}
YAML
RUST_LOG=warn "$SLUICE" serve --config "$dir/sluice.yaml" --redis redis://127.0.0.1:6391 &
pids+=($!)
for _ in $(seq 1 50); do curl -sf http://127.0.0.1:8094/readyz >/dev/null && break; sleep 0.2; done
echo "machine: $(nproc) cores; $(redis-server --version | cut -d' ' -f3); binary $SLUICE; Sluice and both Redis share the cores"

now_ms() { date +%s%3N; }
wait_len() { # PORT KEY N
  while [ "$(redis-cli -p "$1" XLEN "$2")" -lt "$3" ]; do sleep 0.05; done
}

# In: EVENTS binary-mode entries of ~500 bytes written to the other Redis first (the
# group is created by the connector at the stream's end, so create it at 0 beforehand).
redis-cli -p 6392 XGROUP CREATE source sluice 0 MKSTREAM >/dev/null
python3 - "$EVENTS" > "$dir/in.txt" <<'PY'
import sys
n = int(sys.argv[1]); data = '{"order":"%s","note":"' + "x" * 420 + '"}'
for i in range(n):
    print('XADD source * ce-specversion 1.0 ce-id in-%d ce-source /bench ce-type order.created content-type application/json data \'%s\'' % (i, data % i))
PY
start=$(now_ms)
redis-cli -p 6392 < "$dir/in.txt" > /dev/null
wait_len 6391 'sluice:{in}:events' "$EVENTS"
in_ms=$(( $(now_ms) - start ))
echo "in:  $EVENTS entries (written while the connector read) -> bus in ${in_ms} ms: $(( EVENTS * 1000 / in_ms )) events/s"

# Out: EVENTS events ingested in batches of 500, until the last is in the other stream.
python3 - "$EVENTS" > "$dir/out.jsonl" <<'PY'
import json, sys
n = int(sys.argv[1])
for s in range(0, n, 500):
    print(json.dumps([{"specversion": "1.0", "id": "out-%d" % i, "source": "/bench", "type": "order.created",
                       "datacontenttype": "application/json", "data": {"order": i, "note": "x" * 420}}
                      for i in range(s, min(n, s + 500))]))
PY
start=$(now_ms)
while read -r batch; do
  printf '%s' "$batch" | curl -sf -o /dev/null -H 'content-type: application/cloudevents-batch+json' --data-binary @- http://127.0.0.1:8094/buses/out/events
done < "$dir/out.jsonl"
wait_len 6392 sink "$EVENTS"
out_ms=$(( $(now_ms) - start ))
echo "out: $EVENTS events ingested -> other stream in ${out_ms} ms: $(( EVENTS * 1000 / out_ms )) events/s (ingest, route and XADD delivery)"

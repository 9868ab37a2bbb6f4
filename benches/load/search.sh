#!/usr/bin/env bash
# Search speed for docs/performance.md: entries scanned per second by
# GET /api/v1/buses/{bus}/events with a pattern that matches nothing, so every request
# reads its whole budget (100,000 entries). Starts its own redis-server on port 6390 and a
# release build of Sluice on 8090 (benches/load/bench.yaml, bus `ingest`).
#
#   bash benches/load/search.sh            # 200,000 events of ~500 bytes, 5 rounds
#   EVENTS=500000 ROUNDS=3 bash benches/load/search.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
EVENTS=${EVENTS:-200000}
ROUNDS=${ROUNDS:-5}
REDIS_PORT=6390
dir=$(mktemp -d)
pids=()
cleanup() { for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

cargo build --release --quiet --bin sluice
bin=${CARGO_TARGET_DIR:-target}/release
redis-server --port $REDIS_PORT --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null &
pids+=($!)
sleep 0.5
RUST_LOG=warn "$bin"/sluice serve --config benches/load/bench.yaml --redis "redis://127.0.0.1:$REDIS_PORT" &
pids+=($!)
sleep 1
echo "machine: $(nproc) cores; $(redis-server --version | cut -d' ' -f3)"

# Batches of 500 events of ~500 bytes (JSON data), as the ingest benchmark's.
python3 - "$EVENTS" > "$dir/batches.txt" <<'PY'
import json, sys
n = int(sys.argv[1])
pad = "x" * 380
for start in range(0, n, 500):
    batch = [{"specversion": "1.0", "id": "e%d" % i, "source": "/bench", "type": "order.paid",
              "datacontenttype": "application/json",
              "data": {"order": i, "currency": "EUR", "note": pad}} for i in range(start, min(n, start + 500))]
    print(json.dumps(batch))
PY
while read -r batch; do
  printf '%s' "$batch" > "$dir/batch.json"
  curl -sS -o /dev/null -X POST http://127.0.0.1:8090/buses/ingest/events \
    -H 'content-type: application/cloudevents-batch+json' --data-binary "@$dir/batch.json"
done < "$dir/batches.txt"
echo "bus ingest: $(redis-cli -p $REDIS_PORT XLEN 'sluice:{ingest}:events') events"

query() {
  local name=$1 pattern=$2
  for _ in $(seq "$ROUNDS"); do
    out=$(curl -sS -w ' %{time_total}' -G http://127.0.0.1:8090/api/v1/buses/ingest/events \
      --data-urlencode "pattern=$pattern" --data-urlencode budget=100000)
    python3 -c 'import json,sys; body, t = sys.argv[1].rsplit(" ", 1); s = json.loads(body)["scanned"]; print("%-26s scanned %d in %.3f s = %.0f entries/s" % (sys.argv[2], s, float(t), s / float(t)))' "$out" "$name"
  done
}
echo "== search, 100,000-entry budget, nothing matches"
query "attributes only" '{"type": ["order.refunded"]}'
query "on the data" '{"data": {"currency": ["USD"]}}'

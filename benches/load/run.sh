#!/usr/bin/env bash
# Load benchmarks for docs/performance.md. Needs wrk and redis-server (Debian packages).
# Starts its own redis-server on port 6390 (never touches another Redis), a release
# build of Sluice on 8090, the XADD baseline on 8091 and the latency receiver on 8092.
#
#   bash benches/load/run.sh            # all
#   DURATION=20s bash benches/load/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-15s}
REDIS_PORT=6390
dir=$(mktemp -d)
pids=()
# Stop in reverse order (Sluice before its Redis).
cleanup() { for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

cargo build --release --quiet --bin sluice --example xadd-baseline --example e2e-latency
redis-server --port $REDIS_PORT --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null &
pids+=($!)
sleep 0.5
redis="redis://127.0.0.1:$REDIS_PORT"

echo "== redis-benchmark: XADD, 50 clients, pipeline 100, ~500-byte field"
redis-benchmark -p $REDIS_PORT -q -n 2000000 -c 50 -P 100 -d 500 \
  XADD benchbaseline MAXLEN '~' 1000000 '*' d __data__ 2>/dev/null | tr '\r' '\n' | tail -1
redis-cli -p $REDIS_PORT del benchbaseline >/dev/null

echo "== baseline: actix-web handler doing one XADD per request (wrk -t2 -c64 -d$DURATION)"
./target/release/examples/xadd-baseline 127.0.0.1:8091 "$redis" &
pids+=($!)
sleep 1
wrk -t2 -c64 -d"$DURATION" -s benches/load/binary.lua http://127.0.0.1:8091/buses/ingest/events | grep -E "Requests/sec|Latency|Non-2xx" || true
kill "${pids[-1]}"; unset 'pids[-1]'
redis-cli -p $REDIS_PORT del baseline:events >/dev/null

RUST_LOG=warn ./target/release/sluice serve --config benches/load/bench.yaml --redis "$redis" &
pids+=($!)
sleep 1

echo "== sluice: single binary-mode event per request (wrk -t2 -c64 -d$DURATION)"
wrk -t2 -c64 -d"$DURATION" -s benches/load/binary.lua http://127.0.0.1:8090/buses/ingest/events | grep -E "Requests/sec|Latency|Non-2xx" || true

echo "== sluice: batches of 100 events (~500 bytes each) (wrk -t2 -c16 -d$DURATION)"
wrk -t2 -c16 -d"$DURATION" -s benches/load/batch.lua http://127.0.0.1:8090/buses/ingest/events | grep -E "Requests/sec|Latency|Non-2xx" || true
echo "   (events/s = Requests/sec x 100)"

echo "== sluice: end-to-end latency at 2000 events/s, ingest -> target received"
./target/release/examples/e2e-latency --gateway http://127.0.0.1:8090/buses/bench/events \
  --listen 127.0.0.1:8092 --rate 2000 --seconds 20

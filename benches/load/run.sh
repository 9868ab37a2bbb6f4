#!/usr/bin/env bash
# Load benchmarks for docs/performance.md. Needs wrk and redis-server (Debian packages).
# Starts its own redis-server on port 6390 (never touches another Redis), a release
# build of Sluice on 8090, the XADD baseline on 8091 and the latency receiver on 8092.
#
#   bash benches/load/run.sh                 # everything, 10 s per wrk run
#   DURATION=20s ROUNDS=5 bash benches/load/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
REDIS_PORT=6390
rcli() { redis-cli -p $REDIS_PORT "$@"; }
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
echo "machine: $(nproc) cores; $(redis-server --version | cut -d' ' -f3); wrk and servers share the cores"

echo "== redis-benchmark: XADD, 50 clients, pipeline 100, 500-byte field"
redis-benchmark -p $REDIS_PORT -q -n 2000000 -c 50 -P 100 -d 500 \
  XADD benchbaseline MAXLEN '~' 1000000 '*' d __data__ 2>/dev/null | tr '\r' '\n' | tail -1
rcli flushall >/dev/null

./target/release/examples/xadd-baseline 127.0.0.1:8091 "$redis" &
pids+=($!)
RUST_LOG=warn ./target/release/sluice serve --config benches/load/bench.yaml --redis "$redis" &
pids+=($!)
sleep 1

echo "== end-to-end latency at 2000 events/s for 20 s, ingest -> target received (fresh Redis)"
./target/release/examples/e2e-latency --gateway http://127.0.0.1:8090/buses/bench/events \
  --listen 127.0.0.1:8092 --rate 2000 --seconds 20

# Waits until the router has routed everything on bus $1; prints how long that took.
drain() {
  local start=$(date +%s.%N) lag
  while true; do
    lag=$(rcli xinfo groups "sluice:{$1}:events" | awk 'f{print; exit} /^lag$/{f=1}')
    [ "$lag" = "0" ] && break
    sleep 0.1
  done
  echo "$(date +%s.%N) - $start" | bc
}

echo "== single binary-mode event per request, wrk -t2 -c64 -d$DURATION, $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  base=$(wrk -t2 -c64 -d"$DURATION" -s benches/load/binary.lua http://127.0.0.1:8091/buses/ingest/events | awk '/Requests\/sec/{print $2}')
  rcli del baseline:events >/dev/null
  sluice=$(wrk -t2 -c64 -d"$DURATION" -s benches/load/binary.lua http://127.0.0.1:8090/buses/ingest/events | awk '/Requests\/sec/{print $2}')
  d=$(drain ingest)
  echo "round $round: baseline $base req/s, sluice $sluice req/s ($(echo "scale=1; 100*$sluice/$base" | bc)%); router caught up ${d}s after wrk ended"
  rcli xtrim 'sluice:{ingest}:events' MAXLEN 0 >/dev/null
done

echo "== batches of 100 structured events (~500 bytes each), wrk -t2 -c16 -d$DURATION, $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  rps=$(wrk -t2 -c16 -d"$DURATION" -s benches/load/batch.lua http://127.0.0.1:8090/buses/ingest/events | awk '/Requests\/sec/{print $2}')
  lag=$(rcli xinfo groups 'sluice:{ingest}:events' | awk 'f{print; exit} /^lag$/{f=1}')
  d=$(drain ingest)
  echo "round $round: $(echo "$rps*100/1" | bc) events/s ingested; router lag at the end $lag, routed ${d}s later ($(echo "$lag/$d" | bc) events/s)"
  rcli xtrim 'sluice:{ingest}:events' MAXLEN 0 >/dev/null
done

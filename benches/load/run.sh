#!/usr/bin/env bash
# Load benchmarks for docs/performance.md. Needs wrk and redis-server (Debian packages).
# Starts its own redis-server on port 6390 (never touches another Redis), a release
# build of Sluice on 8090, the XADD baseline on 8091 and the latency receiver on 8092.
#
#   bash benches/load/run.sh                 # everything, 10 s per wrk run
#   DURATION=20s ROUNDS=5 bash benches/load/run.sh
#   ONLY=schemas bash benches/load/run.sh      # one part: xadd e2e single batch schemas churn
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
ONLY=${ONLY:-xadd e2e single batch schemas churn}
part() { [[ " $ONLY " == *" $1 "* ]]; }
REDIS_PORT=6390
rcli() { redis-cli -p $REDIS_PORT "$@"; }
dir=$(mktemp -d)
pids=()
# Stop in reverse order (Sluice before its Redis).
cleanup() { for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

cargo build --release --quiet --bin sluice --example xadd-baseline --example e2e-latency
bin=${CARGO_TARGET_DIR:-target}/release
redis-server --port $REDIS_PORT --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null &
pids+=($!)
sleep 0.5
redis="redis://127.0.0.1:$REDIS_PORT"
echo "machine: $(nproc) cores; $(redis-server --version | cut -d' ' -f3); wrk and servers share the cores"

if part xadd; then
echo "== redis-benchmark: XADD, 50 clients, pipeline 100, 500-byte field"
redis-benchmark -p $REDIS_PORT -q -n 2000000 -c 50 -P 100 -d 500 \
  XADD benchbaseline MAXLEN '~' 1000000 '*' d __data__ 2>/dev/null | tr '\r' '\n' | tail -1
rcli flushall >/dev/null
fi

"$bin"/examples/xadd-baseline 127.0.0.1:8091 "$redis" &
pids+=($!)
RUST_LOG=warn "$bin"/sluice serve --config benches/load/bench.yaml --redis "$redis" &
sluice_pid=$!
pids+=($!)
sleep 1

if part e2e; then
echo "== end-to-end latency at 2000 events/s for 20 s, ingest -> target received (fresh Redis)"
"$bin"/examples/e2e-latency --gateway http://127.0.0.1:8090/buses/bench/events \
  --listen 127.0.0.1:8092 --rate 2000 --seconds 20
fi

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

if part single; then
echo "== single binary-mode event per request, wrk -t2 -c64 -d$DURATION, $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  base=$(wrk -t2 -c64 -d"$DURATION" -s benches/load/binary.lua http://127.0.0.1:8091/buses/ingest/events | awk '/Requests\/sec/{print $2}')
  rcli del baseline:events >/dev/null
  sluice=$(wrk -t2 -c64 -d"$DURATION" -s benches/load/binary.lua http://127.0.0.1:8090/buses/ingest/events | awk '/Requests\/sec/{print $2}')
  d=$(drain ingest)
  echo "round $round: baseline $base req/s, sluice $sluice req/s ($(echo "scale=1; 100*$sluice/$base" | bc)%); router caught up ${d}s after wrk ended"
  rcli xtrim 'sluice:{ingest}:events' MAXLEN 0 >/dev/null
done

fi

if part batch; then
echo "== batches of 100 structured events (~500 bytes each), wrk -t2 -c16 -d$DURATION, $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  rps=$(wrk -t2 -c16 -d"$DURATION" -s benches/load/batch.lua http://127.0.0.1:8090/buses/ingest/events | awk '/Requests\/sec/{print $2}')
  lag=$(rcli xinfo groups 'sluice:{ingest}:events' | awk 'f{print; exit} /^lag$/{f=1}')
  d=$(drain ingest)
  echo "round $round: $(echo "$rps*100/1" | bc) events/s ingested; router lag at the end $lag, routed ${d}s later ($(echo "$lag/$d" | bc) events/s)"
  rcli xtrim 'sluice:{ingest}:events' MAXLEN 0 >/dev/null
done
fi

# Bus `checked` is `ingest` plus `validation: enforce` with a schema bound to the events;
# the two are driven alternately with the same scripts (which goes first alternates by
# round). Besides wrk's rate, each run reports Sluice's own CPU time per event (user +
# system from /proc, ingest and routing, read after the router caught up).
if part schemas; then
echo "== schema validation: bus ingest (validation off) vs bus checked (enforce), $ROUNDS rounds each"
bad=$(curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:8090/buses/checked/events \
  -H 'ce-specversion: 1.0' -H 'ce-id: bad-1' -H 'ce-source: /bench' -H 'ce-type: order.paid' \
  -H 'content-type: application/json' -d '{"order":{"id":"o-1","amount":-1,"currency":"EUR"}}')
[ "$bad" = "400" ] || { echo "bus checked accepted an invalid event ($bad): not validating"; exit 1; }
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$sluice_pid/stat"; }
# measure BUS SCRIPT CONNECTIONS EVENTS_PER_REQUEST: prints "events/s cpu-µs-per-event"
measure() {
  local before rps events after
  before=$(cpu)
  rps=$(wrk -t2 -c"$3" -d"$DURATION" -s "benches/load/$2" "http://127.0.0.1:8090/buses/$1/events" | awk '/Requests\/sec/{print $2}')
  drain "$1" >/dev/null
  after=$(cpu)
  events=$(rcli xlen "sluice:{$1}:events")
  rcli xtrim "sluice:{$1}:events" MAXLEN 0 >/dev/null
  echo "$(echo "$rps*$4/1" | bc) $(echo "scale=1; ($after-$before)*1000000/$ticks/$events" | bc)"
}
for kind in single batch; do
  if [ $kind = single ]; then args="binary.lua 64 1"; else args="batch.lua 16 100"; fi
  for round in $(seq "$ROUNDS"); do
    if (( round % 2 )); then
      read -r off off_cpu <<<"$(measure ingest $args)"; read -r on on_cpu <<<"$(measure checked $args)"
    else
      read -r on on_cpu <<<"$(measure checked $args)"; read -r off off_cpu <<<"$(measure ingest $args)"
    fi
    echo "$kind round $round: off $off events/s ($off_cpu µs CPU/event), enforce $on events/s ($on_cpu µs CPU/event): $(echo "scale=1; 100*$on/$off" | bc)%"
  done
done
fi

if part churn; then
echo "== single-event ingest while a rule of the bus changes once a second vs no change, wrk -t2 -c64 -d$DURATION, $ROUNDS rounds"
# The changing rule matches nothing (the router's work per event is the same); each change
# goes through the API, the store and the reloader, and swaps the bus's routes.
change_rules() {
  local n=0
  while true; do
    n=$((n + 1))
    curl -s -o /dev/null -X PUT http://127.0.0.1:8090/api/v1/buses/ingest/rules/churn \
      -d "{\"pattern\": {\"type\": [\"churn.$n\"]}, \"targets\": [{\"name\": \"rx\", \"kind\": \"http\", \"url\": \"http://127.0.0.1:8092/\"}]}"
    sleep 1
  done
}
for round in $(seq "$ROUNDS"); do
  still=$(wrk -t2 -c64 -d"$DURATION" -s benches/load/binary.lua http://127.0.0.1:8090/buses/ingest/events | awk '/Requests\/sec/{print $2}')
  drain ingest >/dev/null
  rcli xtrim 'sluice:{ingest}:events' MAXLEN 0 >/dev/null
  change_rules &
  changer=$!
  churned=$(wrk -t2 -c64 -d"$DURATION" -s benches/load/binary.lua http://127.0.0.1:8090/buses/ingest/events | awk '/Requests\/sec/{print $2}')
  kill $changer; wait $changer 2>/dev/null || true
  drain ingest >/dev/null
  rcli xtrim 'sluice:{ingest}:events' MAXLEN 0 >/dev/null
  changes=$(rcli get 'sluice:{control}:rev')
  echo "round $round: no change $still req/s, a change a second $churned req/s ($(echo "scale=1; 100*$churned/$still" | bc)%); store revision $changes"
done
fi

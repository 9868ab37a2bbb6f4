#!/usr/bin/env bash
# Instructions the whole gateway executes per event from ingest to delivery, tracing off
# (bus `plain`) vs on (bus `traced`, sample 1.0), under callgrind: repeatable whatever
# else the machine does. Needs valgrind and redis-server; starts its own redis-server on
# 6391, the sink on 8093 and Sluice on 8095 (benches/load/operations.yaml).
#
#   bash benches/load/trace_instructions.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet --bin sluice --example sink
bin=${CARGO_TARGET_DIR:-target}/release
dir=$(mktemp -d)
redis-server --port 6391 --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null &
redis_pid=$!
"$bin"/examples/sink --listen 127.0.0.1:8093 &
sink_pid=$!
sed 's/127.0.0.1:8090/127.0.0.1:8095/' benches/load/operations.yaml >"$dir/ops.yaml"
RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$dir/cg.%p" \
  "$bin"/sluice serve --config "$dir/ops.yaml" --redis redis://127.0.0.1:6391 2>"$dir/valgrind.log" &
sluice_pid=$!
trap 'kill $sluice_pid $sink_pid $redis_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
until curl -sf -o /dev/null http://127.0.0.1:8095/healthz; do sleep 1; done
send() { python3 benches/load/send_events.py 8095 "$@"; }
delivered() { curl -sS http://127.0.0.1:8093/count; }
# Waits until the sink has N deliveries, then the counts since the previous dump.
dump() {
  while [ "$(delivered)" -lt "$1" ]; do sleep 0.5; done
  sleep 2
  callgrind_control -d "$sluice_pid" >/dev/null 2>&1
  ls -t "$dir"/cg.*.* | head -1 | xargs grep -m1 '^summary' | cut -d' ' -f2
}
# Warm-up: every task started, connections open.
send plain batch 2 w; send traced batch 2 w
dump 400 >/dev/null
total=400
for round in 1 2; do
  send plain batch 100 "a$round"; total=$((total + 10000)); off=$(dump $total)
  send traced batch 100 "b$round"; total=$((total + 10000)); on=$(dump $total)
  echo "round $round, batches of 100, ingest to delivery: off $((off / 10000)) instructions/event, traced $((on / 10000)) ($(echo "scale=1; 100*$on/$off - 100" | bc)%)"
done

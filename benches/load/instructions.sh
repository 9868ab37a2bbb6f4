#!/usr/bin/env bash
# Instructions the whole gateway executes per event, validation off (bus `ingest`) vs
# enforce (bus `checked`), under callgrind: repeatable whatever else the machine does.
# Needs valgrind and redis-server; starts its own redis-server on 6391, Sluice on 8095.
#
#   bash benches/load/instructions.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet --bin sluice
bin=${CARGO_TARGET_DIR:-target}/release
dir=$(mktemp -d)
redis-server --port 6391 --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null &
redis_pid=$!
sed 's/127.0.0.1:8090/127.0.0.1:8095/' benches/load/bench.yaml >"$dir/bench.yaml"
RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$dir/cg.%p" \
  "$bin"/sluice serve --config "$dir/bench.yaml" --redis redis://127.0.0.1:6391 2>"$dir/valgrind.log" &
sluice_pid=$!
trap 'kill $sluice_pid $redis_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
until curl -sf -o /dev/null http://127.0.0.1:8095/healthz; do sleep 1; done
send() { python3 benches/load/send_events.py 8095 "$@"; }
# Counts since the previous dump, after the router caught up.
dump() { sleep 3; callgrind_control -d "$sluice_pid" >/dev/null 2>&1; ls -t "$dir"/cg.*.* | head -1 | xargs grep -m1 '^summary' | cut -d' ' -f2; }
send ingest single 100 w; send checked single 100 w; send ingest batch 5 w; send checked batch 5 w
dump >/dev/null
for kind in single batch; do
  if [ $kind = single ]; then requests=1000 events=1000; else requests=50 events=5000; fi
  send ingest $kind $requests a; off=$(dump)
  send checked $kind $requests b; on=$(dump)
  echo "$kind: off $((off / events)) instructions/event, enforce $((on / events)) ($(echo "scale=1; 100*$on/$off - 100" | bc)%)"
done

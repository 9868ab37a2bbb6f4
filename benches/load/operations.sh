#!/usr/bin/env bash
# Costs of the operations features for docs/performance.md: tracing on vs off (ingest to
# delivery), bytes per archived event, and replay speed. Starts its own redis-server on
# port 6390, a release build of Sluice on 8090 (benches/load/operations.yaml) and the
# sink (benches/tools/sink.rs) on 8093.
#
#   bash benches/load/operations.sh              # 20,000 events per trace round, 3 rounds
#   EVENTS=50000 ROUNDS=5 ARCHIVED=200000 bash benches/load/operations.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
EVENTS=${EVENTS:-20000}
ROUNDS=${ROUNDS:-3}
ARCHIVED=${ARCHIVED:-100000}
REDIS_PORT=6390
rcli() { redis-cli -p $REDIS_PORT "$@"; }
dir=$(mktemp -d)
pids=()
cleanup() { for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

cargo build --release --quiet --bin sluice --example sink
bin=${CARGO_TARGET_DIR:-target}/release
redis-server --port $REDIS_PORT --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null &
pids+=($!)
"$bin"/examples/sink --listen 127.0.0.1:8093 &
pids+=($!)
sleep 0.5
RUST_LOG=warn "$bin"/sluice serve --config benches/load/operations.yaml --redis "redis://127.0.0.1:$REDIS_PORT" &
sluice_pid=$!
pids+=($!)
sleep 1.5
echo "machine: $(nproc) cores; $(redis-server --version | cut -d' ' -f3); Sluice, Redis, the sink and curl share the cores"

# Batches of 500 events of ~500 bytes, ids PREFIX0..PREFIX(N-1). The data looks like an
# order (fixed keys; random ids, names, amounts, SKUs and a note of random words), so
# compression meets what it would in production, not a repeated padding string.
batches() {
  python3 - "$1" "$2" <<'PY'
import json, random, sys, uuid
random.seed(7)
n, prefix = int(sys.argv[1]), sys.argv[2]
words = ("the order was packed shipped late early gift fragile express priority customer asked "
         "for a call before delivery leave at door neighbour office weekend invoice separately").split()
names = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov", "Ken Thompson"]
types = ["order.created", "order.paid", "order.shipped", "order.refunded"]
for start in range(0, n, 500):
    batch = []
    for i in range(start, min(n, start + 500)):
        data = {"order_id": str(uuid.uuid4()), "customer": {"name": random.choice(names), "id": random.randint(1, 10**7)},
                "items": [{"sku": "SKU-%06d" % random.randint(0, 999999), "qty": random.randint(1, 5),
                           "price": round(random.uniform(1, 500), 2)} for _ in range(random.randint(1, 3))],
                "currency": random.choice(["EUR", "USD", "GBP"]),
                "note": " ".join(random.choice(words) for _ in range(random.randint(8, 20)))}
        batch.append({"specversion": "1.0", "id": "%s%d" % (prefix, i), "source": "/shop/%d" % random.randint(1, 20),
                      "type": random.choice(types), "time": "2026-12-03T10:%02d:%02d.%03dZ" % (i // 60000 % 60, i // 1000 % 60, i % 1000),
                      "datacontenttype": "application/json", "data": data})
    print(json.dumps(batch))
PY
}
post_all() { # BUS FILE
  while read -r batch; do
    printf '%s' "$batch" > "$dir/batch.json"
    curl -sS -o /dev/null -X POST "http://127.0.0.1:8090/buses/$1/events" \
      -H 'content-type: application/cloudevents-batch+json' --data-binary "@$dir/batch.json"
  done < "$2"
}
delivered() { curl -sS http://127.0.0.1:8093/count; }
wait_delivered() { while [ "$(delivered)" -lt "$1" ]; do sleep 0.05; done; }
ticks=$(getconf CLK_TCK)
sluice_cpu() { awk '{print $14+$15}' "/proc/$sluice_pid/stat"; }
redis_cpu() { rcli info cpu | awk -F: '/^used_cpu_(sys|user):/{s+=$2} END{printf "%.6f", s}'; }

echo "== tracing off (bus plain) vs on (bus traced, sample 1.0): $EVENTS events ingested in batches of 500, until the sink has them all"
batches "$EVENTS" e > "$dir/trace.txt"
# measure BUS: prints "events/s sluice-µs/event redis-µs/event"
measure() {
  local target before_s before_r start end after_s after_r
  target=$(( $(delivered) + EVENTS ))
  before_s=$(sluice_cpu); before_r=$(redis_cpu); start=$(date +%s.%N)
  post_all "$1" "$dir/trace.txt"
  wait_delivered "$target"
  end=$(date +%s.%N); after_s=$(sluice_cpu); after_r=$(redis_cpu)
  rcli xtrim "sluice:{$1}:events" MAXLEN 0 >/dev/null
  echo "$(echo "$EVENTS/($end-$start)" | bc) $(echo "scale=1; ($after_s-$before_s)*1000000/$ticks/$EVENTS" | bc) $(echo "scale=1; ($after_r-$before_r)*1000000/$EVENTS" | bc)"
}
for round in $(seq "$ROUNDS"); do
  if (( round % 2 )); then
    read -r off off_s off_r <<<"$(measure plain)"; read -r on on_s on_r <<<"$(measure traced)"
  else
    read -r on on_s on_r <<<"$(measure traced)"; read -r off off_s off_r <<<"$(measure plain)"
  fi
  echo "round $round: off $off events/s delivered (Sluice $off_s µs, Redis $off_r µs CPU/event); on $on events/s (Sluice $on_s µs, Redis $on_r µs): $(echo "scale=1; 100*$on/$off" | bc)% of the throughput"
done
echo "trace lists: $(rcli --scan --pattern 'sluice:{traced}:trace:*' | wc -l) (one per traced event)"

echo "== archive: $ARCHIVED events of ~500 bytes (random order data) into bus archived (archive all, no pattern)"
before=$(rcli info memory | awk -F: '/^used_memory:/{print $2}' | tr -d '\r')
batches "$ARCHIVED" a > "$dir/archive.txt"
target=$(( $(delivered) + ARCHIVED ))
post_all archived "$dir/archive.txt"
wait_delivered "$target"
while :; do
  a=$(curl -sS http://127.0.0.1:8090/api/v1/archives/all)
  n=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["events"])' "$a")
  [ "$n" -ge "$ARCHIVED" ] && break
  sleep 0.5
done
raw=$(python3 -c 'import json,sys; print(sum(len(l) for l in open(sys.argv[1])) // int(sys.argv[2]))' "$dir/archive.txt" "$ARCHIVED")
rcli xtrim 'sluice:{archived}:events' MAXLEN 0 >/dev/null
sleep 1
after=$(rcli info memory | awk -F: '/^used_memory:/{print $2}' | tr -d '\r')
python3 -c 'import json,sys; a = json.loads(sys.argv[1]); n = a["events"]; print("archive: %d events in %d segments, %d bytes of segments = %.1f bytes/event (the JSON event is ~%s bytes); Redis used_memory after trimming the bus: %+.1f bytes/event" % (n, a["segments"], a["bytes"], a["bytes"] / n, sys.argv[2], (int(sys.argv[4]) - int(sys.argv[3])) / n))' "$a" "$raw" "$before" "$after"

echo "== replay of the whole archive into bus archived (rule all -> sink), $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  target=$(( $(delivered) + ARCHIVED ))
  start=$(date +%s.%N)
  curl -sS -o /dev/null -X POST http://127.0.0.1:8090/api/v1/replays -H 'content-type: application/json' \
    -d "{\"name\": \"bench-$round-$$\", \"bus\": \"archived\", \"archive\": \"all\", \"since\": \"1h\"}"
  while :; do
    s=$(curl -sS "http://127.0.0.1:8090/api/v1/replays/bench-$round-$$")
    state=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["state"])' "$s")
    [ "$state" = COMPLETED ] && break
    [ "$state" = FAILED ] && { echo "replay failed: $s"; exit 1; }
    sleep 0.05
  done
  replayed=$(date +%s.%N)
  wait_delivered "$target"
  end=$(date +%s.%N)
  echo "round $round: $ARCHIVED events replayed into the bus in $(echo "scale=2; $replayed-$start" | bc) s ($(echo "$ARCHIVED/($replayed-$start)" | bc) events/s); all delivered after $(echo "scale=2; $end-$start" | bc) s ($(echo "$ARCHIVED/($end-$start)" | bc) events/s)"
  rcli xtrim 'sluice:{archived}:events' MAXLEN 0 >/dev/null
done

echo "== replay of the whole archive to rule none only (routed, matched by no rule, nothing delivered), $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  start=$(date +%s.%N)
  curl -sS -o /dev/null -X POST http://127.0.0.1:8090/api/v1/replays -H 'content-type: application/json' \
    -d "{\"name\": \"alone-$round-$$\", \"bus\": \"archived\", \"archive\": \"all\", \"since\": \"1h\", \"rules\": [\"none\"]}"
  while :; do
    s=$(curl -sS "http://127.0.0.1:8090/api/v1/replays/alone-$round-$$")
    state=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["state"])' "$s")
    [ "$state" = COMPLETED ] && break
    sleep 0.05
  done
  replayed=$(date +%s.%N)
  while [ "$(rcli xinfo groups 'sluice:{archived}:events' | awk 'f{print; exit} /^lag$/{f=1}')" != "0" ]; do sleep 0.05; done
  end=$(date +%s.%N)
  echo "round $round: $ARCHIVED events replayed in $(echo "scale=2; $replayed-$start" | bc) s ($(echo "$ARCHIVED/($replayed-$start)" | bc) events/s), routed $(echo "scale=2; $end-$start" | bc) s after the start"
  rcli xtrim 'sluice:{archived}:events' MAXLEN 0 >/dev/null
done

#!/usr/bin/env bash
# NATS connector throughput (docs/connectors/nats.md): events/s in (JetStream -> bus,
# the `nats` connector) and out (bus -> JetStream, the `nats` target, PubAck awaited).
# Starts its own redis-server and nats-server (JetStream, store in a temp dir) on free
# ports and runs the gateway binary $SLUICE (default target/release/sluice); needs
# redis-server, redis-cli, nats-server (/usr/sbin or PATH), curl and python3 (stdlib
# only: the NATS protocol is spoken over a plain socket).
#
#   SLUICE=target/debug/sluice N=20000 bash benches/load/connector_nats.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
SLUICE=${SLUICE:-target/release/sluice}
N=${N:-20000}
BATCH=${BATCH:-100}
CONCURRENCY=${CONCURRENCY:-64}
NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port)
NATS_PORT=$(free_port)
HTTP_PORT=$(free_port)
dir=$(mktemp -d)
pids=()
cleanup() { for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null &
pids+=($!)
mkdir -p "$dir/js"
"$NATS_SERVER" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$dir/js" >/dev/null 2>&1 &
pids+=($!)
sleep 0.5
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

# nats.py ACTION ...: create STREAM SUBJECT | publish SUBJECT N | count STREAM
cat >"$dir/nats.py" <<'EOF'
import json, socket, sys, time
port = int(sys.argv[1]); action = sys.argv[2]
s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb")
f.readline()  # INFO
s.sendall(b'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\nSUB _bench.reply 1\r\n')
def request(subject, payload=b""):
    s.sendall(b"PUB %s _bench.reply %d\r\n%s\r\n" % (subject.encode(), len(payload), payload))
    while True:
        line = f.readline()
        if line.startswith(b"PING"):
            s.sendall(b"PONG\r\n")
        elif line.startswith(b"MSG") or line.startswith(b"HMSG"):
            size = int(line.split()[-1]); body = f.read(size + 2)[:-2]
            return json.loads(body[body.find(b"{"):])
if action == "create":
    print(request("$JS.API.STREAM.CREATE." + sys.argv[3], json.dumps({"name": sys.argv[3], "subjects": [sys.argv[4]], "storage": "file"}).encode()).get("error", "created"))
elif action == "count":
    print(request("$JS.API.STREAM.INFO." + sys.argv[3])["state"]["messages"])
elif action == "publish":
    subject, n = sys.argv[3], int(sys.argv[4]); out = []
    for i in range(n):
        h = (b"NATS/1.0\r\nce-specversion: 1.0\r\nce-id: in-%d\r\nce-source: /bench\r\nce-type: bench.in\r\ncontent-type: application/json\r\n\r\n" % i)
        body = b'{"i":%d,"pad":"%s"}' % (i, b"x" * 400)
        out.append(b"HPUB %s %d %d\r\n%s%s\r\n" % (subject.encode(), len(h), len(h) + len(body), h, body))
        if len(out) == 1000:
            s.sendall(b"".join(out)); out = []
    s.sendall(b"".join(out) + b"PING\r\n")
    while not f.readline().startswith(b"PONG"):
        pass
EOF
nats() { python3 "$dir/nats.py" "$NATS_PORT" "$@"; }
nats create BIN bench.in >/dev/null
nats create BOUT bench.out >/dev/null
url="nats://127.0.0.1:$NATS_PORT"
redis="redis://127.0.0.1:$REDIS_PORT"
now() { date +%s.%N; }

echo "machine: $(nproc) cores; $SLUICE; N=$N events of ~500 bytes; everything shares the cores"

# In: the stream is filled first, then the gateway drains it into the bus.
nats publish bench.in "$N"
cat >"$dir/in.yaml" <<EOF
buses: [{name: bench}]
connectors:
  - {name: in, kind: nats, bus: bench, url: "$url", stream: BIN, consumer: gw, batch: $BATCH, dedupe: off}
EOF
RUST_LOG=warn "$SLUICE" serve --config "$dir/in.yaml" --redis "$redis" --listen "127.0.0.1:$HTTP_PORT" &
gw=$!
pids+=("$gw")
start=$(now)
until [ "$(rcli xlen 'sluice:{bench}:events')" -ge "$N" ]; do sleep 0.05; done
end=$(now)
echo "in  (JetStream -> bus, batch $BATCH): $(echo "$N / ($end - $start)" | bc) events/s ($N in $(echo "$end - $start" | bc | cut -c1-5) s, gateway start included)"
kill "$gw"; wait "$gw" 2>/dev/null || true
rcli flushall >/dev/null

# Out: events ingested over HTTP in batches of 500, delivered to JetStream.
cat >"$dir/out.yaml" <<EOF
buses: [{name: bench}]
rules:
  - name: out
    bus: bench
    targets:
      - {name: js, kind: nats, url: "$url", subject: bench.out, concurrency: $CONCURRENCY}
EOF
RUST_LOG=warn "$SLUICE" serve --config "$dir/out.yaml" --redis "$redis" --listen "127.0.0.1:$HTTP_PORT" &
gw=$!
pids+=("$gw")
until curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null; do sleep 0.05; done
python3 - "$N" >"$dir/batches" <<'EOF'
import json, sys
n = int(sys.argv[1])
for b in range(0, n, 500):
    print(json.dumps([{"specversion": "1.0", "id": "out-%d" % i, "source": "/bench", "type": "bench.out",
                       "datacontenttype": "application/json", "data": {"i": i, "pad": "x" * 400}}
                      for i in range(b, min(n, b + 500))]))
EOF
start=$(now)
while read -r batch; do
  printf '%s' "$batch" | curl -sf -o /dev/null -H 'content-type: application/cloudevents-batch+json' \
    --data-binary @- "http://127.0.0.1:$HTTP_PORT/buses/bench/events"
done <"$dir/batches"
ingested=$(now)
until [ "$(nats count BOUT)" -ge "$N" ]; do sleep 0.1; done
end=$(now)
echo "out (bus -> JetStream, concurrency $CONCURRENCY, PubAck awaited): $(echo "$N / ($end - $start)" | bc) events/s ($N in $(echo "$end - $start" | bc | cut -c1-5) s from the first POST; ingest took $(echo "$ingested - $start" | bc | cut -c1-5) s)"

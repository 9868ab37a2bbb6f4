#!/usr/bin/env bash
# Events/s through the RabbitMQ target (bus -> broker) and connector (broker -> bus),
# against a running RabbitMQ (AMQP_URL, default guest on 127.0.0.1:5672) and a private
# redis-server on a free port. Needs redis-server, redis-cli, python3, rabbitmqctl (to
# delete the queue it made). The queue has a random name; nothing else is touched.
#
#   SLUICE=target/release/sluice bash benches/load/connector_rabbitmq.sh   # default binary
#   SLUICE=target/debug/sluice N=20000 bash benches/load/connector_rabbitmq.sh
#
# out: N events posted over HTTP (batches of 100) to bus `bout`, whose rule publishes
#      each to the queue with publisher confirms (concurrency 64); timed from the first
#      post until the target stream has nothing left to deliver (every event confirmed
#      by the broker and XACKed).
# in:  a gateway with a connector on that queue (prefetch 500) and the N messages
#      waiting; timed from its start until bus `bin` holds N events (every batch
#      appended, then acknowledged upstream).
set -euo pipefail
cd "$(dirname "$0")/../.."
SLUICE=${SLUICE:-target/release/sluice}
N=${N:-20000}
AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(port)
HTTP_PORT=$(port)
QUEUE="sluice-bench-$(python3 -c 'import uuid; print(uuid.uuid4().hex[:12])')"
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
dir=$(mktemp -d)
gw=""
stop_gw() { if [ -n "$gw" ]; then kill "$gw" 2>/dev/null || true; wait "$gw" 2>/dev/null || true; gw=""; fi; }
cleanup() {
  stop_gw
  rcli shutdown nosave >/dev/null 2>&1 || true
  rabbitmqctl delete_queue "$QUEUE" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null &
until rcli ping >/dev/null 2>&1; do sleep 0.05; done

# Starts the gateway with config $1 and waits until it answers.
start_gw() {
  RUST_LOG=warn "$SLUICE" serve --config "$1" --listen "127.0.0.1:$HTTP_PORT" \
    --redis "redis://127.0.0.1:$REDIS_PORT" 2>>"$dir/sluice.log" &
  gw=$!
  until curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null; do sleep 0.02; done
}
now() { date +%s.%N; }

cat >"$dir/declare.yaml" <<EOF
buses: [{name: bin, max_len: 10000000}]
connectors:
  - {name: rabbit, kind: rabbitmq, bus: bin, url: "$AMQP_URL", queue: $QUEUE, declare: true}
EOF
# Two gateway ids: the in gateway would otherwise drop what the out gateway stamped
# with its own id (loop prevention, docs/connectors/rabbitmq.md).
cat >"$dir/out.yaml" <<EOF
gateway_id: bench-out
buses: [{name: bout, max_len: 10000000}]
rules:
  - name: all
    bus: bout
    targets:
      - {name: rabbit, kind: rabbitmq, url: "$AMQP_URL", routing_key: $QUEUE, concurrency: 64}
EOF
cat >"$dir/in.yaml" <<EOF
gateway_id: bench-in
buses: [{name: bin, max_len: 10000000}]
connectors:
  - {name: rabbit, kind: rabbitmq, bus: bin, url: "$AMQP_URL", queue: $QUEUE, prefetch: 500, dedupe: 1h}
EOF

echo "binary: $SLUICE; $(nproc) cores shared by RabbitMQ, Redis, the gateway and this script; N=$N"

# The queue exists once a connector declared it (and stays: durable).
start_gw "$dir/declare.yaml"
sleep 1
stop_gw

# out: bus -> broker.
start_gw "$dir/out.yaml"
t0=$(now)
python3 - "$HTTP_PORT" "$N" <<'EOF'
import http.client, json, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port)
for start in range(0, n, 100):
    batch = [{"specversion": "1.0", "id": f"b-{i}", "source": "/bench", "type": "bench.rabbit",
              "datacontenttype": "application/json", "data": {"i": i, "pad": "x" * 200}}
             for i in range(start, min(n, start + 100))]
    conn.request("POST", "/buses/bout/events", json.dumps(batch),
                 {"content-type": "application/cloudevents-batch+json"})
    r = conn.getresponse(); r.read()
    assert r.status < 300, r.status
EOF
t_posted=$(now)
key='sluice:{bout}:t:all:rabbit'
until [ "$(rcli exists "$key")" = "1" ]; do sleep 0.05; done
while true; do
  info=$(rcli xinfo groups "$key" | tr '\n' ' ')
  pending=$(echo "$info" | awk '{for(i=1;i<NF;i++) if($i=="pending"){print $(i+1); exit}}')
  lag=$(echo "$info" | awk '{for(i=1;i<NF;i++) if($i=="lag"){print $(i+1); exit}}')
  delayed=$(rcli zcard 'sluice:{bout}:delay:all:rabbit')
  [ "$pending" = "0" ] && [ "$lag" = "0" ] && [ "$delayed" = "0" ] && break
  sleep 0.05
done
t1=$(now)
stop_gw
echo "out (bus -> broker, confirmed): $N events in $(echo "$t1 - $t0" | bc) s = $(echo "$N / ($t1 - $t0)" | bc) events/s (posting took $(echo "$t_posted - $t0" | bc) s)"

# in: broker -> bus.
t0=$(now)
start_gw "$dir/in.yaml"
until [ "$(rcli xlen 'sluice:{bin}:events')" -ge "$N" ]; do sleep 0.02; done
t1=$(now)
stop_gw
echo "in (broker -> bus, acked after append): $N events in $(echo "$t1 - $t0" | bc) s = $(echo "$N / ($t1 - $t0)" | bc) events/s"

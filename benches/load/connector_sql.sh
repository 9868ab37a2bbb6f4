#!/usr/bin/env bash
# Throughput of the SQL connectors (docs/connectors/sql.md), against a running gateway
# binary: $SLUICE (default target/release/sluice). Needs redis-server, psql, mysql, curl.
# Uses the PostgreSQL at $PG_URL (default postgres://postgres@127.0.0.1:5432/test) and
# the MariaDB/MySQL at $MY_URL (default mysql://root@127.0.0.1:3306/test), with tables of
# its own (random suffix, dropped at the end); starts its own redis-server.
#
#   in:  N rows committed into an outbox table (one INSERT ... SELECT generate_series),
#        time from the commit until all N are in the bus (XLEN).
#   out: N events posted over HTTP (batches of 100, 4 in parallel) to a bus with a
#        `postgres` and a `mysql` row target; time from the first post until both
#        tables hold N rows (the ingest time is printed too: it is part of the figure).
#
#   SLUICE=target/debug/sluice N=20000 bash benches/load/connector_sql.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
SLUICE=${SLUICE:-target/release/sluice}
N=${N:-20000}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
MY_URL=${MY_URL:-mysql://root@127.0.0.1:3306/test}
REDIS_PORT=${REDIS_PORT:-6393}
PORT=${PORT:-8093}
sfx=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
OUTBOX=bench_outbox_$sfx
ROWS=bench_rows_$sfx
dir=$(mktemp -d)
pids=()

psql_() { psql -qtA "$PG_URL" "$@"; }
# mysql://USER[:PASS]@HOST:PORT/DB for the mysql client
my_user=$(sed -E 's#mysql://([^:@]+).*#\1#' <<<"$MY_URL")
my_host=$(sed -E 's#.*@([^:/]+).*#\1#' <<<"$MY_URL")
my_port=$(sed -E 's#.*:([0-9]+)/.*#\1#' <<<"$MY_URL")
my_db=$(sed -E 's#.*/([^/?]+)$#\1#' <<<"$MY_URL")
mysql_() { mysql -N -h "$my_host" -P "$my_port" -u "$my_user" "$my_db" "$@"; }

cleanup() {
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; done
  psql_ -c "DROP TABLE IF EXISTS $OUTBOX; DROP TABLE IF EXISTS $ROWS" >/dev/null 2>&1 || true
  mysql_ -e "DROP TABLE IF EXISTS $ROWS" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null &
pids+=($!)
sleep 0.5
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
now() { date +%s.%N; }
wait_for() { # $1: command printing a number, $2: target
  while [ "$(eval "$1")" -lt "$2" ]; do sleep 0.05; done
}
start_gateway() { # $1: config file
  RUST_LOG=warn "$SLUICE" serve --config "$1" --listen "127.0.0.1:$PORT" --redis "redis://127.0.0.1:$REDIS_PORT" 2>>"$dir/sluice.log" &
  gw=$!
  pids+=("$gw")
  until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.1; done
}
stop_gateway() { kill "$gw"; wait "$gw" 2>/dev/null || true; }
echo "binary: $SLUICE; N=$N; $(nproc) cores shared by gateway, databases and this script"

# ---- in: outbox -> bus
psql_ -c "CREATE TABLE $OUTBOX (id bigserial primary key, aggregate text, event json)" >/dev/null
cat >"$dir/in.yaml" <<EOF
buses: [{name: bench}]
connectors:
  - {name: outbox, kind: postgres-outbox, bus: bench, url: "$PG_URL", table: $OUTBOX, batch: 500, poll: 50ms}
EOF
start_gateway "$dir/in.yaml"
t0=$(now)
psql_ -c "INSERT INTO $OUTBOX (aggregate, event) SELECT 'k' || (i % 16), json_build_object('specversion', '1.0', 'id', 'in-' || i, 'source', '/bench', 'type', 'bench.row', 'datacontenttype', 'application/json', 'data', json_build_object('seq', i, 'pad', repeat('x', 200))) FROM generate_series(1, $N) AS i" >/dev/null
t1=$(now)
wait_for "rcli xlen 'sluice:{bench}:events'" "$N"
t2=$(now)
echo "in:  $N rows inserted in $(echo "$t1 - $t0" | bc) s; in the bus after $(echo "$t2 - $t1" | bc) s: $(echo "$N / ($t2 - $t1)" | bc) events/s (outbox -> bus)"
stop_gateway
rcli flushall >/dev/null

# ---- out: bus -> postgres and mysql rows
psql_ -c "CREATE TABLE $ROWS (id text primary key, type text, seq bigint, doc jsonb)" >/dev/null
mysql_ -e "CREATE TABLE $ROWS (id varchar(64) primary key, type varchar(64), seq bigint, doc json)"
cat >"$dir/out.yaml" <<EOF
buses: [{name: bench}]
rules:
  - name: rows
    bus: bench
    targets:
      - {name: pg, kind: postgres, url: "$PG_URL", table: $ROWS, concurrency: 128, batch: 200, columns: {type: \$.type, seq: \$.data.seq, doc: \$.data}}
      - {name: my, kind: mysql, url: "$MY_URL", table: $ROWS, concurrency: 128, batch: 200, columns: {type: \$.type, seq: \$.data.seq, doc: \$.data}}
EOF
start_gateway "$dir/out.yaml"
mkdir -p "$dir/batches"
for ((b=0; b<N/100; b++)); do
  {
    printf '['
    for ((i=b*100; i<(b+1)*100; i++)); do
      [ $i -gt $((b*100)) ] && printf ','
      printf '{"specversion":"1.0","id":"out-%d","source":"/bench","type":"bench.event","datacontenttype":"application/json","data":{"seq":%d,"pad":"%0200d"}}' $i $i 0
    done
    printf ']'
  } >"$dir/batches/$b.json"
done
t0=$(now)
find "$dir/batches" -type f -print0 | xargs -0 -P4 -I{} curl -sf -o /dev/null -H 'content-type: application/cloudevents-batch+json' \
  --data-binary "@{}" "http://127.0.0.1:$PORT/buses/bench/events"
t1=$(now)
wait_for "psql_ -c 'SELECT count(*) FROM $ROWS'" "$N"
t2=$(now)
wait_for "mysql_ -e 'SELECT count(*) FROM $ROWS'" "$N"
t3=$(now)
echo "out: $N events ingested in $(echo "$t1 - $t0" | bc) s; all rows in postgres after $(echo "$t2 - $t0" | bc) s, in mysql after $(echo "$t3 - $t0" | bc) s: $(echo "$N / ($t3 - $t0)" | bc) events/s to each of the two tables (HTTP -> bus -> rows)"

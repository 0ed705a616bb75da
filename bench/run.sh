#!/usr/bin/env bash
# Measures batchgate against the example backend on this machine, for the
# record (never a test): pass-through requests/s through batchgate next to the
# backend alone (a ratio, same run, same machine), the wall time of a
# 1,000-item batch, batchgate's peak RSS during a 10,000-item batch, and
# h2load figures for HTTP/2 clients (h2c) with HTTP/1.1 and h2c backends.
#   bench/run.sh [seconds-per-wrk-run]     (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
bash scripts/setup.sh >/dev/null
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j "$(nproc)" --target batchgate example_backend >/dev/null

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

./build-bench/example_backend --listen 127.0.0.1:0 --threads 1 > "$work/backend.out" &
pids+=($!)
until grep -q '^listening on' "$work/backend.out"; do sleep 0.05; done
backend_port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/backend.out")

cat > "$work/bench.yaml" <<YAML
workers: 1
access_log: false
listen: [{address: 127.0.0.1:0}]
batch: {max_items: 10000, max_body_bytes: 8MiB, max_parallel: 64}
routes:
  - {prefix: /via-h2c, backend: legacy-h2c, rewrite_prefix: ""}
  - {prefix: /, backend: legacy}
backends:
  legacy:
    endpoints: [127.0.0.1:$backend_port]
    max_connections: 64
    max_in_flight: 64
  legacy-h2c:                       # the same example backend, spoken to over h2c
    endpoints: [127.0.0.1:$backend_port]
    protocol: h2c
    max_connections: 1
    max_in_flight: 64
YAML
./build-bench/batchgate --config "$work/bench.yaml" 2> "$work/batchgate.err" &
bg_pid=$!
pids+=($bg_pid)
until grep -q 'listening on' "$work/batchgate.err"; do sleep 0.05; done
proxy_port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\) .*/\1/p' "$work/batchgate.err" | head -1)

rps() { wrk -t1 -c32 -d"${secs}s" "$1" | awk '/Requests\/sec/ {print $2}'; }
echo "== pass-through: wrk -t1 -c32 -d${secs}s GET /users/1 (1 batchgate worker, 1 backend thread)"
direct=$(rps "http://127.0.0.1:$backend_port/users/1")
proxied=$(rps "http://127.0.0.1:$proxy_port/users/1")
echo "backend alone:     $direct req/s"
echo "through batchgate: $proxied req/s  (ratio $(awk -v a="$proxied" -v b="$direct" 'BEGIN{printf "%.2f", a/b}'))"

make_batch() {  # N items: GET/PUT/DELETE mix on /users and /items
  python3 - "$1" <<'PY'
import json, sys
n = int(sys.argv[1]); reqs = []
for i in range(n):
    k = i % 3
    if k == 0: reqs.append({"id": str(i), "method": "GET", "url": f"/users/{1 + i % 3}"})
    elif k == 1: reqs.append({"id": str(i), "method": "DELETE", "url": f"/items/{i}"})
    else: reqs.append({"id": str(i), "method": "PUT", "url": f"/users/{1000 + i}", "body": {"name": f"n{i}"}})
print(json.dumps({"requests": reqs}))
PY
}
make_batch 1000 > "$work/b1000.json"
make_batch 10000 > "$work/b10000.json"
post() { curl -s -o "$work/out" -w '%{time_total}' -H 'Content-Type: application/json' --data-binary @"$1" "http://127.0.0.1:$proxy_port/batch"; }
echo "== batches"
post "$work/b1000.json" >/dev/null   # warm the pool
for run in 1 2 3; do
  t=$(post "$work/b1000.json")
  entries=$(grep -o '<D:response>' "$work/out" | wc -l)
  echo "1,000-item batch: ${t}s ($entries entries)"
done
rss_before=$(awk '/VmHWM/ {print $2}' /proc/$bg_pid/status)
t=$(post "$work/b10000.json")
entries=$(grep -o '<D:response>' "$work/out" | wc -l)
rss_after=$(awk '/VmHWM/ {print $2}' /proc/$bg_pid/status)
echo "10,000-item batch: ${t}s ($entries entries, $(stat -c %s "$work/b10000.json") request bytes, $(stat -c %s "$work/out") response bytes)"
echo "batchgate peak RSS: ${rss_before} KiB before, ${rss_after} KiB after the 10,000-item batch"

# HTTP/2 clients: h2load speaks h2c with prior knowledge to http:// URLs.
h2rps() { h2load "$@" 2>&1 | awk '/^finished in/ {gsub(",", "", $4); print $4}'; }
n=$((secs * 4000))
echo "== pass-through with h2load -c32 -m10 (HTTP/2 clients), $n requests each"
echo "backend alone, h2c:                 $(h2rps -n "$n" -c32 -m10 "http://127.0.0.1:$backend_port/users/1") req/s"
echo "backend alone, HTTP/1.1:            $(h2rps --h1 -n "$n" -c32 -m1 "http://127.0.0.1:$backend_port/users/1") req/s"
echo "h2c client → HTTP/1.1 backend:      $(h2rps -n "$n" -c32 -m10 "http://127.0.0.1:$proxy_port/users/1") req/s"
echo "h2c client → h2c backend:           $(h2rps -n "$n" -c32 -m10 "http://127.0.0.1:$proxy_port/via-h2c/users/1") req/s"
echo "HTTP/1.1 client → HTTP/1.1 backend: $(h2rps --h1 -n "$n" -c32 -m1 "http://127.0.0.1:$proxy_port/users/1") req/s"
echo "HTTP/1.1 client → h2c backend:      $(h2rps --h1 -n "$n" -c32 -m1 "http://127.0.0.1:$proxy_port/via-h2c/users/1") req/s"

make_batch 100 > "$work/b100.json"
sed 's#"url": "/#"url": "/via-h2c/#g' "$work/b100.json" > "$work/b100-h2c.json"
batches=$((secs * 40))
echo "== 100-item batches with h2load -c4 -m4 (h2c clients), $batches batches each"
for kind in http1 h2c; do
  file="$work/b100.json"; [ "$kind" = h2c ] && file="$work/b100-h2c.json"
  r=$(h2rps -n "$batches" -c4 -m4 -d "$file" -H 'content-type: application/json' "http://127.0.0.1:$proxy_port/batch")
  echo "items to $kind backend: $r batches/s = $(awk -v r="$r" 'BEGIN{printf "%.0f", r * 100}') items/s"
done

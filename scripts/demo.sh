#!/usr/bin/env bash
# Quick start: installs what is missing, builds, starts the bundled example
# backend on 127.0.0.1:9100 and batchgate on 127.0.0.1:8080 in front of it
# (config/example.yaml), and sends a few real requests through.
#   --once   stop both after the requests instead of waiting for Ctrl-C
set -euo pipefail
cd "$(dirname "$0")/.."
once=0; [ "${1:-}" = "--once" ] && once=1

bash scripts/setup.sh
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-demo -j "$(nproc)" --target batchgate example_backend

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

wait_for_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "demo: nothing is listening on port $1" >&2; return 1
}

./build-demo/example_backend --listen 127.0.0.1:9100 > /tmp/batchgate-demo-backend.log 2>&1 &
pids+=($!)
wait_for_port 9100
./build-demo/batchgate --config config/example.yaml > /tmp/batchgate-demo-access.log 2>/tmp/batchgate-demo.log &
pids+=($!)
wait_for_port 8080

show() { echo; echo "\$ curl -si $*"; curl -si "$@"; echo; }
show http://127.0.0.1:8080/batch -H 'Content-Type: application/json' -d '{
  "requests": [
    {"id": "1", "method": "GET",    "url": "/users/1"},
    {"id": "2", "method": "PUT",    "url": "/users/4", "body": {"name": "Barbara"}},
    {"id": "3", "method": "GET",    "url": "/users/4", "dependsOn": ["2"]},
    {"id": "4", "method": "GET",    "url": "/slow/300"},
    {"id": "5", "method": "DELETE", "url": "/items/17"},
    {"id": "6", "method": "GET",    "url": "/users/999"}
  ]}'
show http://127.0.0.1:8080/batch -H 'Content-Type: application/xml' -H 'Accept: application/json' --data-binary \
  '<batch xmlns="urn:batchgate:batch" xmlns:D="DAV:"><request method="DELETE"><D:href>/items/1</D:href><D:href>/items/2</D:href><D:href>/items/3</D:href></request></batch>'
show http://127.0.0.1:8080/users/1
show --path-as-is 'http://127.0.0.1:8080/../etc/passwd'
echo
echo "access log (/tmp/batchgate-demo-access.log):"
cat /tmp/batchgate-demo-access.log

if [ $once = 0 ]; then
  echo
  echo "batchgate listens on http://127.0.0.1:8080 (example backend on :9100). Ctrl-C stops both."
  wait "${pids[1]}"
fi

#!/usr/bin/env bash
# One command for batchgate's benchmarks (issue 10 §1): builds batchgate and
# example_backend (Release, build-bench/), installs the peers (nginx with
# lua-nginx) and the tools, runs every scenario on 127.0.0.1 with taskset
# pinning (proxies on CPU 0, load generators and backends on CPU 1), and
# writes bench/results/{raw.json,report.md,*.png}. See bench/README.md.
#
#   bench/bench.sh                       # full run: 3 rounds, under 15 minutes
#   QUICK=1 bench/bench.sh               # smoke test: 1 round, short phases (~3 min)
#   ONLY=batch,latency ROUNDS=5 DURATION=5 bench/bench.sh
#   bench/report.py                      # rebuild report.md + plots from raw.json
#
# Knobs: QUICK, ROUNDS, DURATION (seconds per load phase), ONLY (comma list of
# ceiling,pass,batch,latency,memory,idle,callgrind), KEEP_WORK=1 (keep the
# scratch dir bench/work-*), PEER_MAX_ITEMS (largest batch sent to the peer,
# default 10000), LATENCY_BATCHES, IDLE_CONNECTIONS, JOBS (build, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

# Packages: the build's own (scripts/setup.sh), then the peers and tools.
bash scripts/setup.sh
extra=(nginx libnginx-mod-http-lua lua-cjson wrk nghttp2-client gnuplot-nox valgrind util-linux python3)
missing=()
for p in "${extra[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "bench: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian starts nginx as a service when it is installed; the benchmark runs its own.

echo "bench: building batchgate and example_backend (Release, build-bench/)"
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j "${JOBS:-2}" --target batchgate example_backend >/dev/null

# 10,000 idle client connections need that many descriptors in the client and
# in the proxy: raise the soft limit as far as the hard one allows.
hard=$(ulimit -Hn)
want=30000
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
ulimit -n "$want" 2>/dev/null || ulimit -n "$hard"
echo "bench: ulimit -n $(ulimit -n)"

python3 bench/bench.py
python3 bench/report.py
echo "bench: done in $(( $(date +%s) - start )) s: bench/results/report.md"

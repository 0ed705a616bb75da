#!/usr/bin/env bash
# Instructions per item of each batch parser (JSON, XML, multipart/mixed),
# counted by callgrind: one 1,000-item batch parsed three times against once,
# the difference divided by 2,000, so start-up and building the body cancel
# out. Repeatable on a busy machine.
#   bash bench/parser_cost.sh [BUILD_DIR]   (default build-bench, Release)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
command -v valgrind >/dev/null || { echo "parser_cost: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
if [ ! -x "$build/parser_cost" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j2 --target parser_cost >/dev/null
fi
instructions() {  # FORMAT REPEATS
  local out; out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" "$build/parser_cost" "$1" 1000 "$2" >/dev/null 2>&1
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}'
  rm -f "$out"
}
printf '%-10s %14s %14s %12s\n' format "parsed once" "three times" "per item"
for f in json xml multipart; do
  a=$(instructions "$f" 1); b=$(instructions "$f" 3)
  printf '%-10s %14s %14s %12s\n' "$f" "$a" "$b" "$(( (b - a) / 2000 ))"
done

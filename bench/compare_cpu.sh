#!/usr/bin/env bash
# Two batchgate binaries side by side (e.g. before and after a change), one
# worker each, in front of the same example_backend, under the same load,
# interleaved round by round. Prints each one's own CPU (utime+stime from
# /proc/PID/stat) per item of 1,000-item JSON batches and per pass-through
# request (wrk). The clock tick is 10 ms: use enough rounds, and a quiet
# machine; requests per second alone would move with the neighbours.
# PROTOCOL=h2c talks to the backend over h2c (prior knowledge) instead of
# HTTP/1.1. Items per second are the batches' wall time, for reference only.
#   [PROTOCOL=h2c] bench/compare_cpu.sh OLD_BATCHGATE NEW_BATCHGATE EXAMPLE_BACKEND [rounds]
set -euo pipefail
old=$1 new=$2 backend_bin=$3 rounds=${4:-5} protocol=${PROTOCOL:-http1}
work=$(mktemp -d)
$backend_bin --listen 127.0.0.1:0 --threads 1 > $work/be.out 2>&1 &
bpid=$!
sleep 0.5
bport=$(grep -o '127.0.0.1:[0-9]*' $work/be.out | head -1 | cut -d: -f2)
start() { # bin name
  cat > $work/$2.yaml <<Y
workers: 1
access_log: false
listen: [{address: 127.0.0.1:0}]
routes: [{prefix: /, backend: b}]
backends: {b: {endpoints: [127.0.0.1:$bport], protocol: $protocol}}
Y
  $1 --config $work/$2.yaml 2> $work/$2.err & echo $! > $work/$2.pid
}
start $old old; start $new new; sleep 0.7
port() { grep -o 'listening on 127.0.0.1:[0-9]*' $work/$1.err | head -1 | cut -d: -f2; }
cpu() { awk '{print $14+$15}' /proc/$(cat $work/$1.pid)/stat; }
python3 - > $work/batch.json <<'P'
import json; print(json.dumps({"requests":[{"id":str(i),"method":"GET","url":"/users/%d"%i} for i in range(1000)]}))
P
declare -A items reqs
declare -A wall
for name in old new; do items[$name]=0; reqs[$name]=""; wall[$name]=0; done
for r in $(seq 1 $rounds); do
  for name in old new; do
    p=$(port $name); c0=$(cpu $name); w0=$(date +%s%N)
    for k in 1 2 3 4 5; do curl -s -o /dev/null -H 'Content-Type: application/json' --data-binary @$work/batch.json http://127.0.0.1:$p/batch; done
    c1=$(cpu $name); items[$name]=$(( ${items[$name]} + c1 - c0 ))
    wall[$name]=$(( ${wall[$name]} + $(date +%s%N) - w0 ))
    c0=$(cpu $name)
    n=$(wrk -t1 -c16 -d2s http://127.0.0.1:$p/users/1 | awk '/requests in/ {print $1}')
    c1=$(cpu $name); reqs[$name]="${reqs[$name]} $(( c1 - c0 )):$n"
  done
done
tck=$(getconf CLK_TCK)
for name in old new; do
  ticks=${items[$name]}
  python3 -c "
t=$ticks; n=$rounds*5*1000; w=${wall[$name]}/1e9
print('$name ($protocol backend): batch items %.2f us CPU per item, %.0f items/s (%d items)' % (t/$tck*1e6/n, n/w, n))
pairs=[p.split(':') for p in '${reqs[$name]}'.split()]
tt=sum(int(a) for a,b in pairs); nn=sum(int(b) for a,b in pairs)
print('$name ($protocol backend): pass-through %.2f us CPU per request (%d requests)' % (tt/$tck*1e6/nn, nn))"
done
kill $(cat $work/old.pid) $(cat $work/new.pid) $bpid 2>/dev/null || true

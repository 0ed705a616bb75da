#!/usr/bin/env python3
"""batchgate benchmark scenarios (run by bench/bench.sh, which builds and installs first).

Starts everything on 127.0.0.1 with taskset pinning: each proxy (batchgate with
`workers: 1`, nginx with `worker_processes 1`) on CPU 0, the load generators
and the backends on CPU 1. Every load phase reads the proxy's own CPU time
(utime+stime, /proc/PID/stat fields 14+15) before and after, so the key figure
is CPU microseconds per item (or per request), next to items (requests) per
second. Writes bench/results/raw.json; bench/report.py turns it into the report.

Environment knobs: QUICK=1, ROUNDS, DURATION, ONLY=ceiling,pass,batch,latency,
memory,idle,callgrind, KEEP_WORK=1, PEER_MAX_ITEMS (default 10000),
LATENCY_BATCHES, IDLE_CONNECTIONS, BUILD_DIR, RESULTS_DIR.
Python 3 standard library only.
"""

import atexit
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BUILD = os.environ.get("BUILD_DIR", os.path.join(REPO, "build-bench"))
RESULTS = os.environ.get("RESULTS_DIR", os.path.join(HERE, "results"))
QUICK = os.environ.get("QUICK", "") not in ("", "0")
ROUNDS = int(os.environ.get("ROUNDS", "1" if QUICK else "3"))
DURATION = int(os.environ.get("DURATION", "1" if QUICK else "3"))
ALL = ["ceiling", "pass", "batch", "latency", "memory", "idle", "callgrind"]
ONLY = [s for s in os.environ.get("ONLY", ",".join(ALL)).split(",") if s]
KEEP_WORK = os.environ.get("KEEP_WORK", "") not in ("", "0")
PEER_MAX_ITEMS = int(os.environ.get("PEER_MAX_ITEMS", "10000"))
LATENCY_BATCHES = int(os.environ.get("LATENCY_BATCHES", "50" if QUICK else "200"))
IDLE_CONNECTIONS = int(os.environ.get("IDLE_CONNECTIONS", "2000" if QUICK else "10000"))
BATCH_SIZES = [1, 10, 100, 1000]
PROXY_CPU, LOAD_CPU = "0", "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
BATCH_PATH = "/$batch"

for s in ONLY:
    if s not in ALL:
        sys.exit(f"bench.py: unknown scenario {s!r} in ONLY (known: {','.join(ALL)})")

WORK = tempfile.mkdtemp(prefix="work-", dir=HERE)
os.makedirs(os.path.join(WORK, "tmp"), exist_ok=True)
PROCS = []


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------

def spawn(args, cpu, name, env=None):
    out = open(os.path.join(WORK, name + ".out"), "wb")
    err = open(os.path.join(WORK, name + ".err"), "wb")
    p = subprocess.Popen(["taskset", "-c", cpu] + args, stdout=out, stderr=err,
                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    p.name = name
    p.out_path, p.err_path = out.name, err.name
    PROCS.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=10):
    if p.poll() is None:
        try:
            os.kill(p.pid, sig)
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        except ProcessLookupError:
            pass
    if p in PROCS:
        PROCS.remove(p)


def cleanup():
    for p in list(PROCS):
        try:
            stop(p, timeout=5)
        except Exception:
            pass
    if not KEEP_WORK:
        shutil.rmtree(WORK, ignore_errors=True)
    else:
        log("work dir kept:", WORK)


atexit.register(cleanup)
for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, lambda *_: sys.exit(130))


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def read_file(path):
    try:
        with open(path, "r", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def listening_port(p, path):
    def find():
        if p.poll() is not None:
            raise RuntimeError(f"{p.name} exited ({p.returncode}): {read_file(p.err_path)[-2000:]}")
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", read_file(path))
        return int(m.group(1)) if m else None
    return wait_for(find, 120, f"{p.name} to listen")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------------------
# the programs
# ---------------------------------------------------------------------------

class Proxy:
    """A started proxy: name, measured pid (nginx: the worker), ports."""

    def __init__(self, name, proc, pid, h1_port, h2_port):
        self.name, self.proc, self.pid, self.h1, self.h2 = name, proc, pid, h1_port, h2_port

    def stop(self):
        # Under valgrind a signal can land while the process is about to block
        # in epoll_wait with no timer armed (nginx with master_process off):
        # it then waits for an event. Resend, and wake it with a connection.
        for _ in range(30):
            if self.proc.poll() is not None:
                break
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=2)
                break
            except subprocess.TimeoutExpired:
                port_open(self.h1)
        stop(self.proc, signal.SIGTERM, timeout=5)


def start_example_backend(name="example_backend"):
    p = spawn([os.path.join(BUILD, "example_backend"), "--listen", "127.0.0.1:0", "--threads", "1"],
              LOAD_CPU, name)
    return p, listening_port(p, p.out_path)


KIB_BODY = '{"id":1,"pad":"' + "x" * (1024 - 17) + '"}'
assert len(KIB_BODY) == 1024


def fill(template, **kv):
    with open(os.path.join(HERE, "peer", template)) as f:
        text = f.read()
    for k, v in kv.items():
        text = text.replace("@" + k + "@", str(v))
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise RuntimeError(f"{template}: unfilled {left}")
    return text


def start_nginx_backend():
    h1, h2 = free_port(), free_port()
    conf = os.path.join(WORK, "backend-nginx.conf")
    with open(conf, "w") as f:
        f.write(fill("backend.conf.in", WORK=WORK, H1_PORT=h1, H2_PORT=h2, KIB_BODY=KIB_BODY))
    p = spawn(["nginx", "-p", WORK, "-c", conf], LOAD_CPU, "backend-nginx")
    wait_for(lambda: port_open(h1) and port_open(h2) and children(p.pid), 20, "nginx backend")
    return p, h1, h2


def start_peer(be_port, ex_port, name="peer", valgrind=None):
    h1, h2 = free_port(), free_port()
    conf = os.path.join(WORK, f"peer-{name}.conf")
    with open(conf, "w") as f:
        f.write(fill("peer.conf.in", WORK=WORK, NAME=name, PEER_DIR=os.path.join(HERE, "peer"),
                     H1_PORT=h1, H2_PORT=h2, BE_PORT=be_port, EX_PORT=ex_port,
                     MASTER="off" if valgrind else "on", NOFILE=19000, WORKER_CONNECTIONS=18000))
    args = ["nginx", "-p", WORK, "-c", conf]
    if valgrind:
        args = valgrind + args
    p = spawn(args, PROXY_CPU, "peer-" + name)
    wait_for(lambda: (p.poll() is None or (_ for _ in ()).throw(
        RuntimeError("peer nginx exited: " + read_file(os.path.join(WORK, f"peer-{name}.error.log"))[-2000:])))
        and port_open(h1) and port_open(h2), 120, "peer nginx")
    pid = p.pid if valgrind else wait_for(lambda: (children(p.pid) or [None])[0], 20, "nginx worker")
    return Proxy("nginx", p, pid, h1, h2)


def batchgate_config(be_h1, be_h2, ex_port, max_parallel=64, slow_conns=64):
    return f"""workers: 1
access_log: false
listen: [{{address: 127.0.0.1:0}}]
batch:
  path: "{BATCH_PATH}"
  max_items: 100000
  max_body_bytes: 64MiB
  max_parallel: {max_parallel}
  deadline: 300s
limits:
  max_connections: 19000
routes:
  - {{prefix: /h2/, backend: nginx-h2c, rewrite_prefix: /}}
  - {{prefix: /ex/, backend: example, rewrite_prefix: /}}
  - {{prefix: /, backend: nginx}}
backends:
  nginx:
    endpoints: [127.0.0.1:{be_h1}]
    protocol: http1
    max_connections: 64
    max_in_flight: 64
    max_queue: 1000000
    queue_timeout: 60s
    timeout: 60s
  nginx-h2c:
    endpoints: [127.0.0.1:{be_h2}]
    protocol: h2c
    max_connections: 1
    max_in_flight: 64
    max_queue: 1000000
    queue_timeout: 60s
    timeout: 60s
  example:
    endpoints: [127.0.0.1:{ex_port}]
    protocol: http1
    max_connections: {slow_conns}
    max_in_flight: {slow_conns}
    max_queue: 1000000
    queue_timeout: 60s
    timeout: 60s
"""


def start_batchgate(ports, name="batchgate", valgrind=None, **kw):
    conf = os.path.join(WORK, name + ".yaml")
    with open(conf, "w") as f:
        f.write(batchgate_config(ports["be_h1"], ports["be_h2"], ports["ex"], **kw))
    args = [os.path.join(BUILD, "batchgate"), "--config", conf]
    if valgrind:
        args = valgrind + args
    p = spawn(args, PROXY_CPU, name)
    port = listening_port(p, p.err_path)
    return Proxy("batchgate", p, p.pid, port, port)


# ---------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------

def batch_body(n, prefix="", kind="users"):
    return json.dumps({"requests": [{"id": str(i + 1), "method": "GET", "url": f"{prefix}/{kind}/{i + 1}"}
                                    for i in range(n)]}, separators=(",", ":")).encode()


BODY_FILES = {}


def body_file(n, prefix="", kind="users"):
    key = (n, prefix, kind)
    if key not in BODY_FILES:
        path = os.path.join(WORK, f"batch-{kind}-{n}{prefix.replace('/', '_')}.json")
        with open(path, "wb") as f:
            f.write(batch_body(n, prefix, kind))
        BODY_FILES[key] = path
    return BODY_FILES[key]


def post_batch(port, body, path=BATCH_PATH, minimal=False, conn=None, timeout=600):
    """POSTs one batch; returns (status, entries, bodies, bytes, seconds). Streams the answer."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if minimal:
        headers["Prefer"] = "return=minimal"
    t0 = time.perf_counter()
    conn.request("POST", path, body=body, headers=headers)
    r = conn.getresponse()
    entries = bodies = size = 0
    tail = b""
    while True:
        chunk = r.read(1 << 20)
        if not chunk:
            break
        size += len(chunk)
        data = tail + chunk
        entries += data.count(b"<D:response>")
        bodies += data.count(b"<B:body")
        tail = data[-16:]
        # a marker cut by the boundary is counted by the next read; one fully
        # inside the kept tail cannot be (the tail is shorter than a marker+1)
        if b"<D:response>" in tail or b"<B:body" in tail:
            tail = b""
    dt = time.perf_counter() - t0
    if own:
        conn.close()
    return r.status, r.getheader("Content-Type"), entries, bodies, size, dt


def check_batch(proxy, n, prefix, minimal, path=BATCH_PATH, kind="users"):
    st, ctype, entries, bodies, size, dt = post_batch(proxy.h1, batch_body(n, prefix, kind), path, minimal)
    ok = st == 207 and entries == n and (bodies == 0 if minimal else bodies == n)
    if not ok:
        log(f"  CHECK FAILED {proxy.name} n={n} prefix={prefix!r} minimal={minimal}: "
            f"status {st} {ctype}, {entries} entries, {bodies} bodies")
    return {"status": st, "content_type": ctype, "entries": entries, "bodies": bodies, "ok": ok,
            "response_bytes": size}


def run_wrk(url, conns, secs, body=None, minimal=False):
    env = dict(os.environ)
    args = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{conns}", f"-d{secs}s", "--timeout", "60s"]
    if body:
        env["BODY_FILE"] = body
        env["PREFER"] = "return=minimal" if minimal else ""
        args += ["-s", os.path.join(HERE, "wrk_post.lua")]
    out = subprocess.run(args + [url], capture_output=True, text=True, env=env, timeout=secs + 120).stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if not m:
        raise RuntimeError("wrk: " + out)
    n, t, unit = int(m.group(1)), float(m.group(2)), m.group(3)
    t = t / 1000 if unit == "ms" else t * 60 if unit == "m" else t
    errors = 0
    m2 = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m2:
        errors += int(m2.group(1))
    m3 = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m3:
        errors += sum(int(x) for x in m3.groups())
    return {"requests": n, "seconds": t, "errors": errors}


def run_h2load(url, conns, streams, secs):
    args = ["taskset", "-c", LOAD_CPU, "h2load", f"-c{conns}", f"-m{streams}", "-D", str(secs), url]
    out = subprocess.run(args, capture_output=True, text=True, timeout=secs + 120).stdout
    m = re.search(r"finished in ([\d.]+)(m?s)", out)
    m2 = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
    m3 = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    m4 = re.search(r"(\d+) timeout", out)
    if not (m and m2 and m3):
        raise RuntimeError("h2load: " + out)
    t = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    # "done" counts the requests finished within the duration; the status
    # codes also count the few that finished while the clients stopped
    errors = int(m2.group(5)) + int(m2.group(6)) + (int(m4.group(1)) if m4 else 0) + \
        sum(int(x) for x in m3.groups()[1:])
    return {"requests": int(m2.group(3)), "seconds": t, "errors": errors}


def measured(pid, fn):
    c0 = ticks(pid)
    r = fn()
    c1 = ticks(pid)
    r["cpu_ticks"] = c1 - c0
    r["cpu_s"] = (c1 - c0) / CLK_TCK
    return r


# ---------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------

RECORDS = []


def record(scenario, proxy, rnd, variant, **metrics):
    rec = {"scenario": scenario, "proxy": proxy, "round": rnd, **variant, **metrics}
    RECORDS.append(rec)
    shown = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in metrics.items()
             if k in ("rate", "cpu_us", "errors", "p50_ms", "p99_ms", "hwm_kib", "kib_per_conn",
                      "ir_per_item", "ok", "note")}
    log(f"  {scenario} {proxy} {variant} r{rnd}: {shown}")
    save()


def save():
    os.makedirs(RESULTS, exist_ok=True)
    tmp = os.path.join(RESULTS, "raw.json.tmp")
    with open(tmp, "w") as f:
        json.dump({"meta": META, "records": RECORDS}, f, indent=1)
    os.replace(tmp, os.path.join(RESULTS, "raw.json"))


def scenario_ceiling(ctx):
    """The backends driven directly: what the proxies can at most reach."""
    backends = [("nginx", ctx["nginx_be"].pid, ctx["be_h1"], ctx["be_h2"], "/users/1"),
                ("example_backend", ctx["example"].pid, ctx["ex"], ctx["ex"], "/items/1")]
    for rnd in range(1, ROUNDS + 1):
        for name, pid, h1, h2, path in backends:
            wpid = children(pid)[0] if name == "nginx" else pid
            r = measured(wpid, lambda: run_wrk(f"http://127.0.0.1:{h1}{path}", 32, DURATION))
            record("ceiling", name, rnd, {"client": "http1"}, rate=r["requests"] / r["seconds"],
                   cpu_us=r["cpu_s"] * 1e6 / max(1, r["requests"]), **r)
            r = measured(wpid, lambda: run_h2load(f"http://127.0.0.1:{h2}{path}", 32, 10, DURATION))
            record("ceiling", name, rnd, {"client": "h2c"}, rate=r["requests"] / r["seconds"],
                   cpu_us=r["cpu_s"] * 1e6 / max(1, r["requests"]), **r)


def scenario_pass(ctx):
    bg, peer = ctx["batchgate"], ctx["peer"]
    points = [  # (client, batchgate path, peer path)
        ("http1", "/users/1", "/users/1"),
        ("h2c", "/users/1", "/users/1"),
    ]
    for rnd in range(1, ROUNDS + 1):
        for client, bpath, ppath in points:
            for proxy, path in ((bg, bpath), (peer, ppath)):
                if client == "http1":
                    fn = lambda: run_wrk(f"http://127.0.0.1:{proxy.h1}{path}", 32, DURATION)
                else:
                    fn = lambda: run_h2load(f"http://127.0.0.1:{proxy.h2}{path}", 32, 10, DURATION)
                r = measured(proxy.pid, fn)
                record("pass", proxy.name, rnd, {"client": client, "backend": "http1"},
                       rate=r["requests"] / r["seconds"], cpu_us=r["cpu_s"] * 1e6 / max(1, r["requests"]), **r)
        # batchgate alone: pass-through to the h2c backend (nginx cannot)
        for client in ("http1", "h2c"):
            if client == "http1":
                fn = lambda: run_wrk(f"http://127.0.0.1:{bg.h1}/h2/users/1", 32, DURATION)
            else:
                fn = lambda: run_h2load(f"http://127.0.0.1:{bg.h2}/h2/users/1", 32, 10, DURATION)
            r = measured(bg.pid, fn)
            record("pass", "batchgate", rnd, {"client": client, "backend": "h2c"},
                   rate=r["requests"] / r["seconds"], cpu_us=r["cpu_s"] * 1e6 / max(1, r["requests"]), **r)


def scenario_batch(ctx):
    bg, peer = ctx["batchgate"], ctx["peer"]
    for rnd in range(1, ROUNDS + 1):
        for size in BATCH_SIZES:
            conns = 4 if size >= 1000 else 8
            for minimal in (False, True):
                runs = [(bg, "http1", ""), (peer, "http1", ""), (bg, "h2c", "/h2")]
                for proxy, backend, prefix in runs:
                    check = check_batch(proxy, size, prefix, minimal)
                    f = body_file(size, prefix)
                    r = measured(proxy.pid, lambda: run_wrk(f"http://127.0.0.1:{proxy.h1}{BATCH_PATH}",
                                                            conns, DURATION, body=f, minimal=minimal))
                    items = r["requests"] * size
                    record("batch", proxy.name, rnd, {"backend": backend, "size": size, "minimal": minimal},
                           rate=items / r["seconds"], batches_per_s=r["requests"] / r["seconds"],
                           cpu_us=r["cpu_s"] * 1e6 / max(1, items), items=items, connections=conns,
                           ok=check["ok"] and r["errors"] == 0, check=check, **r)


def percentile(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def scenario_latency(ctx):
    """100-item batches over a 20 ms backend (example_backend /slow/20), one client, sequential."""
    ports = ctx["ports"]
    bg = start_batchgate(ports, name="batchgate-latency", max_parallel=128, slow_conns=128)
    peer = ctx["peer"]
    body = json.dumps({"requests": [{"id": str(i + 1), "method": "GET", "url": "/ex/slow/20"}
                                    for i in range(100)]}).encode()
    try:
        for rnd in range(1, ROUNDS + 1):
            for proxy, path in ((bg, BATCH_PATH), (peer, BATCH_PATH + "?parallel=128")):
                conn = http.client.HTTPConnection("127.0.0.1", proxy.h1, timeout=60)
                for _ in range(5):  # warm the backend connections
                    post_batch(proxy.h1, body, path, conn=conn)
                lat, bad = [], 0
                c0 = ticks(proxy.pid)
                for _ in range(LATENCY_BATCHES):
                    st, _, entries, _, _, dt = post_batch(proxy.h1, body, path, conn=conn)
                    bad += not (st == 207 and entries == 100)
                    lat.append(dt * 1000)
                cpu = (ticks(proxy.pid) - c0) / CLK_TCK
                conn.close()
                record("latency", proxy.name, rnd, {"size": 100, "backend_ms": 20},
                       p50_ms=percentile(lat, 50), p99_ms=percentile(lat, 99), max_ms=max(lat),
                       min_ms=min(lat), batches=len(lat), errors=bad,
                       cpu_us=cpu * 1e6 / (100 * len(lat)), samples_ms=[round(x, 3) for x in lat])
    finally:
        bg.stop()


def scenario_memory(ctx):
    """Peak RSS (VmHWM) of a fresh proxy process for one big batch."""
    ports = ctx["ports"]
    points = [(10000, "users", "small"), (100000, "users", "small"), (10000, "kib", "1KiB")]
    for rnd in range(1, ROUNDS + 1):
        for n, kind, answer in points:
            body = batch_body(n, "", kind)
            for which in ("batchgate", "nginx"):
                variant = {"items": n, "answer": answer}
                if which == "nginx" and n > PEER_MAX_ITEMS:
                    record("memory", "nginx", rnd, variant, note=f"not run (PEER_MAX_ITEMS={PEER_MAX_ITEMS})")
                    continue
                proxy = start_batchgate(ports, name="batchgate-mem") if which == "batchgate" else \
                    start_peer(ports["be_h1"], ports["ex"], name="mem")
                try:
                    # one small batch first so that the backend connections exist
                    post_batch(proxy.h1, batch_body(64, "", kind))
                    before = status_kib(proxy.pid, "VmHWM")
                    st, _, entries, bodies, size, dt = post_batch(proxy.h1, body)
                    hwm = status_kib(proxy.pid, "VmHWM")
                    record("memory", which, rnd, variant, hwm_kib=hwm, hwm_before_kib=before,
                           ok=st == 207 and entries == n and bodies == n, status=st, entries=entries,
                           seconds=dt, response_bytes=size, request_bytes=len(body))
                finally:
                    proxy.stop()


def open_idle(port, n):
    req = b"GET /users/1 HTTP/1.1\r\nHost: bench\r\n\r\n"
    socks = []
    group_size = 200
    for start in range(0, n, group_size):
        group = []
        for _ in range(min(group_size, n - start)):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.sendall(req)
            group.append(s)
        for s in group:
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = s.recv(65536)
                if not d:
                    raise RuntimeError("idle: connection closed")
                buf += d
            head, rest = buf.split(b"\r\n\r\n", 1)
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError("idle: " + head[:100].decode(errors="replace"))
            if m:
                need = int(m.group(1))
                while len(rest) < need:
                    rest += s.recv(65536)
            else:
                while not rest.endswith(b"0\r\n\r\n"):
                    rest += s.recv(65536)
        socks.extend(group)
    return socks


def scenario_idle(ctx):
    """RSS per idle HTTP/1.1 keep-alive client connection (after one completed request each)."""
    ports = ctx["ports"]
    for rnd in range(1, ROUNDS + 1):
        for which in ("batchgate", "nginx"):
            proxy = start_batchgate(ports, name="batchgate-idle") if which == "batchgate" else \
                start_peer(ports["be_h1"], ports["ex"], name="idle")
            socks = []
            try:
                socks = open_idle(proxy.h1, 100)   # warm: backend pool, allocator arenas
                for s in socks:
                    s.close()
                time.sleep(0.5)
                before = status_kib(proxy.pid, "VmRSS")
                socks = open_idle(proxy.h1, IDLE_CONNECTIONS)
                time.sleep(1.0)
                after = status_kib(proxy.pid, "VmRSS")
                record("idle", which, rnd, {"connections": IDLE_CONNECTIONS}, rss_before_kib=before,
                       rss_after_kib=after, kib_per_conn=(after - before) / IDLE_CONNECTIONS,
                       bytes_per_conn=(after - before) * 1024 / IDLE_CONNECTIONS)
            finally:
                for s in socks:
                    s.close()
                proxy.stop()


def callgrind_total(path):
    total = None
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
    if total is None:
        raise RuntimeError("no totals in " + path)
    return total


def scenario_callgrind(ctx):
    """Instructions per item under callgrind: (Ir(N2) - Ir(N1)) / ((N2 - N1) * 100); the same per
    pass-through request. Each run is a fresh proxy under valgrind; the difference cancels start-up."""
    ports = ctx["ports"]
    size = 100
    body = json.dumps({"requests": [{"id": str(i + 1), "method": "GET", "url": f"/ex/items/{i + 1}"}
                                    for i in range(size)]}).encode()

    def batches(proxy, n):
        conn = http.client.HTTPConnection("127.0.0.1", proxy.h1, timeout=300)
        bad = 0
        for _ in range(n):
            st, _, entries, _, _, _ = post_batch(proxy.h1, body, conn=conn)
            bad += not (st == 207 and entries == size)
        conn.close()
        return bad

    def requests(proxy, n):
        conn = http.client.HTTPConnection("127.0.0.1", proxy.h1, timeout=300)
        bad = 0
        for _ in range(n):
            conn.request("GET", "/ex/items/1")
            r = conn.getresponse()
            r.read()
            bad += r.status != 200
        conn.close()
        return bad

    kinds = [("batch", batches, (3, 9) if QUICK else (10, 30), size),
             ("pass", requests, (100, 300) if QUICK else (300, 1000), 1)]
    for which in ("batchgate", "nginx"):
        for kind, load, (n1, n2), per in kinds:
            variant = {"size": size if kind == "batch" else 1, "kind": kind, "backend": "example_backend http1"}
            irs = {}
            try:
                for n in (n1, n2):
                    out = os.path.join(WORK, f"callgrind-{which}-{kind}-{n}.out")
                    vg = ["valgrind", "--tool=callgrind", "--dump-instr=no", "--trace-children=no",
                          f"--callgrind-out-file={out}"]
                    proxy = start_batchgate(ports, name=f"batchgate-cg-{kind}{n}", valgrind=vg) \
                        if which == "batchgate" else \
                        start_peer(ports["be_h1"], ports["ex"], name=f"cg-{kind}{n}", valgrind=vg)
                    try:
                        bad = load(proxy, n)
                    finally:
                        proxy.stop()
                    if bad:
                        raise RuntimeError(f"{bad} bad answers")
                    irs[n] = callgrind_total(out)
                record("callgrind", which, 1, variant, ir_per_item=(irs[n2] - irs[n1]) / ((n2 - n1) * per),
                       ir_n1=irs[n1], ir_n2=irs[n2], n1=n1, n2=n2)
            except Exception as e:  # the peer under valgrind (LuaJIT) may not work everywhere
                record("callgrind", which, 1, variant, note=f"failed: {e}"[:300])


def cmd(args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=20).stdout.strip() or \
            subprocess.run(args, capture_output=True, text=True, timeout=20).stderr.strip()
    except Exception as e:
        return f"? ({e})"


def machine_facts():
    model = ""
    for line in read_file("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    dirty = cmd(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no", "--", "proxy", "CMakeLists.txt"])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(), "cpu_model": model, "kernel": os.uname().release,
        "memory": (read_file("/proc/meminfo").splitlines() or ["?"])[0],
        "nginx": subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip().replace("nginx version: ", ""),
        "wrk": cmd(["wrk", "-v"]).splitlines()[0] if cmd(["wrk", "-v"]) else "?",
        "h2load": cmd(["h2load", "--version"]),
        "valgrind": cmd(["valgrind", "--version"]),
        "lua_nginx": cmd(["dpkg-query", "-W", "-f=${Version}", "libnginx-mod-http-lua"]),
        "batchgate_commit": cmd(["git", "-C", REPO, "rev-parse", "HEAD"]),
        "proxy_code_commit": cmd(["git", "-C", REPO, "log", "-1", "--format=%h %s", "--", "proxy"])[:160],
        "proxy_code_dirty": bool(dirty),
        "loadavg_start": read_file("/proc/loadavg").strip(),
        "quick": QUICK, "rounds": ROUNDS, "duration_s": DURATION, "only": ONLY,
        "latency_batches": LATENCY_BATCHES, "idle_connections": IDLE_CONNECTIONS,
        "peer_max_items": PEER_MAX_ITEMS, "clk_tck": CLK_TCK, "ulimit_nofile": __import__("resource").getrlimit(
            __import__("resource").RLIMIT_NOFILE)[0],
    }


META = {}


def main():
    META.update(machine_facts())
    t0 = time.monotonic()
    example, ex_port = start_example_backend()
    nginx_be, be_h1, be_h2 = start_nginx_backend()
    ports = {"be_h1": be_h1, "be_h2": be_h2, "ex": ex_port}
    ctx = {"example": example, "nginx_be": nginx_be, "ports": ports, **ports}
    log(f"backends: nginx {be_h1} (h1) {be_h2} (h2c), example_backend {ex_port}; work {WORK}")
    ctx["batchgate"] = start_batchgate(ports)
    ctx["peer"] = start_peer(be_h1, ex_port)
    log(f"batchgate :{ctx['batchgate'].h1} (pid {ctx['batchgate'].pid}), "
        f"peer nginx :{ctx['peer'].h1}/:{ctx['peer'].h2} (worker pid {ctx['peer'].pid})")
    META["batchgate_config"] = batchgate_config(be_h1, be_h2, ex_port)
    timings = {}
    for name in ALL:
        if name not in ONLY:
            continue
        log(f"== {name}")
        s0 = time.monotonic()
        globals()["scenario_" + name](ctx)
        timings[name] = round(time.monotonic() - s0, 1)
        META["scenario_seconds"] = timings
        save()
    META["wall_seconds"] = round(time.monotonic() - t0, 1)
    META["loadavg_end"] = read_file("/proc/loadavg").strip()
    save()
    log(f"done in {META['wall_seconds']} s; {len(RECORDS)} records in {RESULTS}/raw.json")


if __name__ == "__main__":
    main()

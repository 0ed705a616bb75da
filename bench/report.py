#!/usr/bin/env python3
"""Rebuilds bench/results/report.md and the PNG plots from bench/results/raw.json
(written by bench/bench.py), so a report can be regenerated without rerunning.
  python3 bench/report.py [RESULTS_DIR]
Python 3 standard library; plots need gnuplot (skipped with a note if absent).
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("RESULTS_DIR", os.path.join(HERE, "results"))

VARIANT_KEYS = {
    "ceiling": ["client"],
    "pass": ["client", "backend"],
    "batch": ["backend", "size", "minimal"],
    "latency": ["size", "backend_ms"],
    "memory": ["items", "answer"],
    "idle": ["connections"],
    "callgrind": ["kind", "size", "backend"],
}
PEER_NAME = {"nginx": "nginx", "batchgate": "batchgate"}

with open(os.path.join(RESULTS, "raw.json")) as f:
    RAW = json.load(f)
META, RECORDS = RAW["meta"], RAW["records"]


def group(scenario, proxy=None, **variant):
    out = []
    for r in RECORDS:
        if r["scenario"] != scenario or (proxy and r["proxy"] != proxy):
            continue
        if all(r.get(k) == v for k, v in variant.items()):
            out.append(r)
    return out


class Stat:
    def __init__(self, values):
        self.values = [v for v in values if v is not None]
        self.n = len(self.values)
        self.median = statistics.median(self.values) if self.values else None
        self.min = min(self.values) if self.values else None
        self.max = max(self.values) if self.values else None


def stat(scenario, proxy, metric, **variant):
    return Stat([r.get(metric) for r in group(scenario, proxy, **variant)])


def fmt(v, digits=None):
    if v is None:
        return "–"
    if digits is None:
        a = abs(v)
        digits = 0 if a >= 1000 else 1 if a >= 100 else 2 if a >= 1 else 3
    return f"{v:,.{digits}f}"


def cell(s, digits=None):
    if s.median is None:
        return "–"
    if s.n == 1:
        return fmt(s.median, digits)
    return f"{fmt(s.median, digits)} ({fmt(s.min, digits)}–{fmt(s.max, digits)})"


def notes(scenario, proxy, **variant):
    return "; ".join(sorted({r["note"] for r in group(scenario, proxy, **variant) if r.get("note")}))


def variants(scenario):
    keys = VARIANT_KEYS[scenario]
    seen = []
    for r in RECORDS:
        if r["scenario"] == scenario:
            v = tuple((k, r.get(k)) for k in keys)
            if v not in seen:
                seen.append(v)
    return [dict(v) for v in seen]


lines = []
w = lines.append

# ---------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------

goals = []  # (goal text, batchgate figure, peer figure, ratio, target, met)


def ratio_goal(text, bg, peer, limit, unit, digits=2):
    r = bg.median / peer.median if bg.median and peer.median else None
    met = None if r is None else r <= limit
    goals.append((text, f"{cell(bg, digits)} {unit}", f"{cell(peer, digits)} {unit}",
                  fmt(r, 2) + "×" if r else "–", f"≤ {limit}× peer", met))


def abs_goal(text, bg, peer, limit, unit, digits=1, peer_note=""):
    r = bg.median / peer.median if bg.median and peer.median else None
    met = None if bg.median is None else bg.median <= limit
    goals.append((text, f"{cell(bg, digits)} {unit}", (f"{cell(peer, digits)} {unit}" if peer.median else (peer_note or "–")),
                  fmt(r, 2) + "×" if r else "–", f"≤ {fmt(limit, 0)} {unit}", met))


for client, label in (("http1", "HTTP/1.1 clients"), ("h2c", "h2c clients")):
    ratio_goal(f"pass-through, {label}: CPU per request",
               stat("pass", "batchgate", "cpu_us", client=client, backend="http1"),
               stat("pass", "nginx", "cpu_us", client=client, backend="http1"), 1.0, "µs")
for backend, limit, blabel in (("http1", 0.7, "HTTP/1.1 backend"), ("h2c", 0.35, "h2c backend")):
    for size in (10, 100):
        for minimal in (False, True):
            ratio_goal(f"{size}-item batches to {blabel}{', return=minimal' if minimal else ''}: CPU per item",
                       stat("batch", "batchgate", "cpu_us", backend=backend, size=size, minimal=minimal),
                       stat("batch", "nginx", "cpu_us", backend="http1", size=size, minimal=minimal), limit, "µs")
abs_goal("p99 of a 100-item batch over a 20 ms backend", stat("latency", "batchgate", "p99_ms"),
         stat("latency", "nginx", "p99_ms"), 22, "ms")
for items, limit in ((10000, 16), (100000, 48)):
    bg = stat("memory", "batchgate", "hwm_kib", items=items, answer="small")
    pe = stat("memory", "nginx", "hwm_kib", items=items, answer="small")
    bg = Stat([v / 1024 for v in bg.values])
    pe = Stat([v / 1024 for v in pe.values])
    abs_goal(f"peak RSS (VmHWM), one {items:,}-item batch", bg, pe, limit, "MiB",
             peer_note=notes("memory", "nginx", items=items) or "–")
abs_goal("RSS per idle HTTP/1.1 keep-alive client connection",
         Stat([r["kib_per_conn"] for r in group("idle", "batchgate")]),
         Stat([r["kib_per_conn"] for r in group("idle", "nginx")]), 4, "KiB", digits=2)

w("# batchgate benchmark report")
w("")
w(f"Generated by `bench/bench.sh` on {META.get('date')}"
  + (" — **QUICK run (1 round, short phases): a smoke test, not figures to quote**" if META.get("quick") else "")
  + f". {META.get('rounds')} round(s) per point, {META.get('duration_s')} s per load phase; "
  f"every cell is the **median (min–max)** over the rounds. Wall time {META.get('wall_seconds', '?')} s "
  f"(per scenario: {', '.join(f'{k} {v} s' for k, v in META.get('scenario_seconds', {}).items())}).")
w("")
w("The key figure is the proxy's **own CPU time per item** (per request for pass-through): "
  "utime+stime of the proxy process (`/proc/PID/stat`; for nginx its single worker) over a load phase, "
  "divided by the items completed in it. Lower is better. The peer is nginx "
  f"({META.get('nginx', '?')}) with `proxy_pass` to a keepalive upstream for pass-through and, for batches, "
  "a lua-nginx aggregator (`bench/peer/aggregate.lua`) taking the same JSON and writing the same multistatus.")
w("")
w("## Summary (issue 10 goals)")
w("")
w("| goal | batchgate | peer | ratio | target | met |")
w("|---|---|---|---|---|---|")
for text, bg, pe, r, target, met in goals:
    w(f"| {text} | {bg} | {pe} | {r} | {target} | {'yes' if met else 'no' if met is not None else 'not run'} |")
w("")
cg = [(k, stat("callgrind", "batchgate", "ir_per_item", kind=k), stat("callgrind", "nginx", "ir_per_item", kind=k))
      for k in ("batch", "pass")]
if any(b.median for _, b, _ in cg):
    w("Instructions under callgrind (no goal; the machine-independent view of the CPU figures):")
    w("")
    w("| figure | batchgate | peer | ratio |")
    w("|---|---|---|---|")
    for k, b, p in cg:
        r = b.median / p.median if b.median and p.median else None
        w(f"| {'instructions per item, 100-item batches' if k == 'batch' else 'instructions per pass-through request'} "
          f"| {fmt(b.median, 0)} | {fmt(p.median, 0) if p.median else notes('callgrind', 'nginx', kind=k) or '–'} "
          f"| {fmt(r, 2) + '×' if r else '–'} |")
    w("")
w("Notes: the peer cannot multiplex to a backend (nginx upstreams are HTTP/1.1 only), so its h2c-backend "
  "goals compare batchgate → h2c backend with the peer → HTTP/1.1 backend (keepalive 64). "
  "Latency runs both proxies with 128 items in flight per batch (`max_parallel: 128`, "
  "peer `?parallel=128`): with 64, a 100-item batch over a 20 ms backend needs two waves (≥ 40 ms) "
  "in either proxy.")
w("")

# ---------------------------------------------------------------------------
# machine
# ---------------------------------------------------------------------------

w("## Machine and versions")
w("")
for k, label in (("nproc", "nproc"), ("cpu_model", "CPU"), ("kernel", "kernel"), ("memory", "memory"),
                 ("nginx", "nginx"), ("lua_nginx", "libnginx-mod-http-lua"), ("wrk", "wrk"),
                 ("h2load", "h2load"), ("valgrind", "valgrind"),
                 ("batchgate_commit", "HEAD of the checkout measured"),
                 ("proxy_code_commit", "last commit touching proxy/ (the code measured)"),
                 ("proxy_code_dirty", "proxy/ had uncommitted changes"),
                 ("loadavg_start", "load average at start"), ("loadavg_end", "load average at end"),
                 ("ulimit_nofile", "ulimit -n")):
    w(f"- {label}: `{META.get(k, '?')}`")
w("")
w("Pinning: batchgate (`workers: 1`) and nginx (`worker_processes 1`) on CPU 0 (`taskset -c 0`); "
  "wrk, h2load, the Python clients, the nginx backend (1 worker) and example_backend (1 thread) on CPU 1. "
  "The machine is shared: requests per second move with the neighbours, CPU per item much less.")
w("")

# ---------------------------------------------------------------------------
# per scenario
# ---------------------------------------------------------------------------


def table(title, scenario, columns, intro=None):
    rows = variants(scenario)
    if not rows:
        return
    w(f"## {title}")
    w("")
    if intro:
        w(intro)
        w("")
    heads = [c[0] for c in columns]
    w("| " + " | ".join(heads) + " |")
    w("|" + "---|" * len(heads))
    for v in rows:
        for proxy in ("batchgate", "nginx"):
            g = group(scenario, proxy, **v)
            if not g and scenario != "ceiling":
                continue
            if scenario == "ceiling":
                for name in sorted({r["proxy"] for r in group(scenario, **v)}):
                    gg = group(scenario, name, **v)
                    w("| " + " | ".join(c[1](name, v, gg) for c in columns) + " |")
                break
            w("| " + " | ".join(c[1](proxy, v, g) for c in columns) + " |")
    w("")


def col_metric(metric, digits=None, scale=1.0, note=True):
    return lambda p, v, g: cell(Stat([r[metric] * scale for r in g if r.get(metric) is not None]), digits) \
        if any(r.get(metric) is not None for r in g) else (g[0].get("note", "–") if g and note else "–")


def col_rounds(p, v, g):
    return str(len(g))


def col_errors(p, v, g):
    e = sum(r.get("errors", 0) or 0 for r in g)
    bad = sum(1 for r in g if r.get("ok") is False)
    return f"{e}" + (f" ({bad} failed checks)" if bad else "")


proxy_col = ("proxy", lambda p, v, g: PEER_NAME.get(p, p))
table("Ceiling: the backends driven directly", "ceiling", [
    ("backend", lambda p, v, g: p), ("client", lambda p, v, g: v["client"] + (" (wrk -t1 -c32)" if v["client"] == "http1" else " (h2load -c32 -m10)")),
    ("requests/s", col_metric("rate", 0)), ("backend CPU µs/request", col_metric("cpu_us")),
    ("errors", col_errors), ("rounds", col_rounds)],
    "What a proxy in front of these backends could at most reach with the same load generator "
    "(nginx backend: `GET /users/1`; example_backend: `GET /items/1`). The CPU column is the backend's own.")
table("Pass-through", "pass", [
    proxy_col, ("client", lambda p, v, g: v["client"]), ("backend", lambda p, v, g: v["backend"]),
    ("requests/s", col_metric("rate", 0)), ("proxy CPU µs/request", col_metric("cpu_us")),
    ("errors", col_errors), ("rounds", col_rounds)],
    "`GET /users/1` through the proxy to the nginx backend. HTTP/1.1 clients: `wrk -t1 -c32`; "
    "h2c clients: `h2load -c32 -m10` (prior knowledge; nginx on a `listen … http2` cleartext port). "
    "nginx: `upstream { keepalive 64; }`, `proxy_http_version 1.1`, `proxy_set_header Connection \"\"`. "
    "batchgate adds `Via`, `Forwarded`, `X-Forwarded-For/-Proto` to each request; nginx is configured "
    "to add the same four (`proxy_set_header`, also on the aggregator's subrequests). "
    "The h2c-backend rows are batchgate alone (nginx cannot speak HTTP/2 to a backend).")
table("Batches", "batch", [
    proxy_col, ("backend", lambda p, v, g: v["backend"]), ("items", lambda p, v, g: str(v["size"])),
    ("Prefer", lambda p, v, g: "return=minimal" if v["minimal"] else "–"),
    ("items/s", col_metric("rate", 0)), ("proxy CPU µs/item", col_metric("cpu_us")),
    ("errors", col_errors), ("rounds", col_rounds)],
    "JSON batches of N `GET /users/i` (distinct urls) POSTed to `/$batch` by `wrk -t1` with "
    "`bench/wrk_post.lua` (8 connections; 4 for 1000-item batches); items/s = batches/s × N. "
    "Before every measured point one batch is checked: status 207, exactly N `<D:response>` "
    "entries, N bodies (none with `return=minimal`); a failed check is counted in the errors column. "
    "batchgate: `max_parallel: 64`, backend `max_connections: 64`, `max_in_flight: 64`; the h2c backend "
    "is the same nginx on its h2c port with `max_connections: 1`. The peer always uses its HTTP/1.1 "
    "upstream (keepalive 64) and at most 64 subrequests in flight per batch.")
table("Latency", "latency", [
    proxy_col, ("p50 ms", col_metric("p50_ms", 2)), ("p99 ms", col_metric("p99_ms", 2)),
    ("max ms", col_metric("max_ms", 2)), ("batches/round", lambda p, v, g: str(g[0].get("batches", "–"))),
    ("proxy CPU µs/item", col_metric("cpu_us")), ("proxy CPU ms/batch", col_metric("cpu_us", 2, 100 / 1000)),
    ("errors", col_errors), ("rounds", col_rounds)],
    "Wall time of a whole 100-item batch (`GET /ex/slow/20` ×100 → example_backend, which answers after "
    "20 ms on an Asio timer), sequential batches from one Python client on one keep-alive connection. "
    "The floor is 20 ms. Both proxies with up to 128 items in flight per batch and 128 backend connections. "
    "One worker handles all 100 items of a batch on one core, so on this machine the practical floor is "
    "20 ms plus the proxy's own CPU time for the batch (the `ms/batch` column), plus the client's and the "
    "backend's on the other core.")
table("Memory: peak RSS for one big batch", "memory", [
    proxy_col, ("items", lambda p, v, g: f"{v['items']:,}"), ("answers", lambda p, v, g: v["answer"]),
    ("VmHWM MiB", col_metric("hwm_kib", 1, 1 / 1024)),
    ("VmHWM before the batch MiB", col_metric("hwm_before_kib", 1, 1 / 1024, note=False)),
    ("batch wall s", col_metric("seconds", 2, note=False)), ("rounds", col_rounds)],
    "A fresh proxy process per measurement (so the high-water mark is this batch's), one 64-item batch "
    "to open the backend connections, then one batch of N `GET /users/i` (small JSON answers) or "
    "`GET /kib/i` (1 KiB bodies) from a Python client reading the streamed answer. nginx: the worker's VmHWM.")
table("Memory: idle client connections", "idle", [
    proxy_col, ("connections", lambda p, v, g: f"{v['connections']:,}"),
    ("RSS before MiB", col_metric("rss_before_kib", 1, 1 / 1024)), ("RSS after MiB", col_metric("rss_after_kib", 1, 1 / 1024)),
    ("KiB per connection", col_metric("kib_per_conn", 2)), ("rounds", col_rounds)],
    "A fresh proxy; N HTTP/1.1 connections, each after one completed `GET /users/1` pass-through "
    "(so it sits in its idle keep-alive state); (VmRSS after − VmRSS before) / N.")
table("Instructions per item (callgrind)", "callgrind", [
    proxy_col, ("load", lambda p, v, g: "100-item batches" if v.get("kind", "batch") == "batch" else "pass-through GET"),
    ("Ir per item (per request)", col_metric("ir_per_item", 0)),
    ("N1 / N2", lambda p, v, g: f"{g[0].get('n1', '–')} / {g[0].get('n2', '–')}"),
    ("note", lambda p, v, g: g[0].get("note", ""))],
    "`valgrind --tool=callgrind` on the proxy (nginx with `master_process off`), sequential 100-item "
    "batches of `GET /ex/items/i` to example_backend over HTTP/1.1: (Ir(N2) − Ir(N1)) / ((N2 − N1) × 100), "
    "which cancels start-up and shutdown; the same for N sequential pass-through `GET /ex/items/1` on one "
    "keep-alive connection. A fresh proxy under valgrind per N. nginx's batch figure includes LuaJIT.")

# ---------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------

PLOTS = []


def plots():
    if not shutil.which("gnuplot"):
        w("(gnuplot not installed: no plots)")
        return
    tmp = tempfile.mkdtemp()
    script = ['set terminal pngcairo size 1100,480 font "sans,10"' if _has_cairo() else
              'set terminal png size 1100,480', "set grid", "set key top right"]

    def data(name, rows):
        p = os.path.join(tmp, name)
        with open(p, "w") as f:
            for row in rows:
                f.write(" ".join(str(x) for x in row) + "\n")
        return p

    series = [("batchgate", "http1", "batchgate → HTTP/1.1 backend"),
              ("batchgate", "h2c", "batchgate → h2c backend"),
              ("nginx", "http1", "nginx+Lua → HTTP/1.1 backend")]
    for metric, fname, ylabel in (("cpu_us", "batch_cpu.png", "proxy CPU µs per item"),
                                  ("rate", "batch_rate.png", "items per second")):
        if not group("batch"):
            break
        script += [f'set output "{os.path.join(RESULTS, fname)}"', "set multiplot layout 1,2",
                   "set logscale x", 'set xlabel "items per batch"', f'set ylabel "{ylabel}"',
                   "set xrange [0.7:1500]", "set yrange [0:*]"]
        for minimal in (False, True):
            plot = []
            for proxy, backend, label in series:
                rows = []
                for size in sorted({r["size"] for r in group("batch")}):
                    s = stat("batch", proxy, metric, backend=backend, size=size, minimal=minimal)
                    if s.median is not None:
                        rows.append((size, s.median, s.min, s.max))
                if rows:
                    plot.append(f'"{data(f"b-{metric}-{proxy}-{backend}-{minimal}", rows)}" '
                                f'using 1:2:3:4 with yerrorlines lw 2 title "{label}"')
            script.append(f'set title "{"Prefer: return=minimal" if minimal else "full bodies"}"')
            script.append("plot " + ", ".join(plot))
        script += ["unset multiplot", "unset logscale x", "unset xrange", "unset title"]
        PLOTS.append(fname)

    if group("latency"):
        plot = []
        for proxy in ("batchgate", "nginx"):
            xs = sorted(x for r in group("latency", proxy) for x in r.get("samples_ms", []))
            if xs:
                rows = [(x, (i + 1) / len(xs)) for i, x in enumerate(xs)]
                plot.append(f'"{data("lat-" + proxy, rows)}" using 1:2 with lines lw 2 title "{PEER_NAME[proxy]}"')
        script += [f'set output "{os.path.join(RESULTS, "latency.png")}"', "set size 1,1",
                   'set xlabel "wall time of a 100-item batch over a 20 ms backend (ms)"',
                   'set ylabel "fraction of batches"', "set yrange [0:1.02]", "set xrange [*:*]",
                   'set key bottom right', "plot " + ", ".join(plot), "set key top right", "set yrange [0:*]"]
        PLOTS.append("latency.png")

    if group("memory") or group("idle"):
        rows = []
        for v in variants("memory"):
            label = f'{v["items"] // 1000}k {v["answer"]}'
            b = stat("memory", "batchgate", "hwm_kib", **v).median
            n = stat("memory", "nginx", "hwm_kib", **v).median
            rows.append((f'"{label}"', (b or 0) / 1024, (n or 0) / 1024))
        script += [f'set output "{os.path.join(RESULTS, "memory.png")}"', "set multiplot layout 1,2",
                   "set style data histograms", "set style histogram clustered gap 1",
                   "set style fill solid 0.8 border -1", "set boxwidth 0.9", "set xrange [*:*]",
                   'set xlabel "one batch"', "set key top left", 'set ylabel "peak RSS (VmHWM) MiB"', 'set title "big batches (0 = not run)"']
        if rows:
            d = data("mem", rows)
            script.append(f'plot "{d}" using 2:xtic(1) title "batchgate", "" using 3 title "nginx+Lua"')
        irow = [('"idle conn"', stat("idle", "batchgate", "kib_per_conn").median or 0,
                 stat("idle", "nginx", "kib_per_conn").median or 0)]
        d = data("idle", irow)
        script += ['set xlabel ""', 'set ylabel "KiB of RSS per idle keep-alive connection"',
                   'set title "idle client connections"',
                   f'plot "{d}" using 2:xtic(1) title "batchgate", "" using 3 title "nginx"',
                   "unset multiplot"]
        PLOTS.append("memory.png")

    if group("pass"):
        rows = []
        for v in variants("pass"):
            if v["backend"] != "http1":
                continue
            rows.append((f'"{v["client"]} clients"', stat("pass", "batchgate", "cpu_us", **v).median or 0,
                         stat("pass", "nginx", "cpu_us", **v).median or 0))
        d = data("pass", rows)
        script += [f'set output "{os.path.join(RESULTS, "passthrough.png")}"', "set size 1,1",
                   "set style data histograms", "set style histogram clustered gap 1",
                   "set style fill solid 0.8 border -1", 'set xlabel "pass-through GET /users/1"',
                   'set ylabel "proxy CPU µs per request"', 'set title ""', "set yrange [0:*]",
                   f'plot "{d}" using 2:xtic(1) title "batchgate", "" using 3 title "nginx"']
        PLOTS.append("passthrough.png")

    sp = os.path.join(tmp, "plots.gp")
    with open(sp, "w") as f:
        f.write("\n".join(script) + "\n")
    r = subprocess.run(["gnuplot", sp], capture_output=True, text=True)
    if r.returncode != 0:
        print("report.py: gnuplot failed:\n" + r.stderr, file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)


def _has_cairo():
    r = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
    return "pngcairo" in (r.stdout + r.stderr)


plots()
if PLOTS:
    w("## Plots")
    w("")
    for p in PLOTS:
        if os.path.exists(os.path.join(RESULTS, p)):
            w(f"![{p}]({p})")
            w("")

w("## batchgate configuration used")
w("")
w("```yaml")
w(META.get("batchgate_config", "").rstrip())
w("```")
w("")
w("The latency scenario runs a second batchgate with `max_parallel: 128` and 128 connections to "
  "example_backend; memory and idle start a fresh one with this file each time. The peer's nginx "
  "configuration is `bench/peer/peer.conf.in`, the backend's `bench/peer/backend.conf.in`. "
  "Regenerate this report from `raw.json` with `python3 bench/report.py`.")

with open(os.path.join(RESULTS, "report.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
print(f"report.py: wrote {os.path.join(RESULTS, 'report.md')} and {len(PLOTS)} plot(s)")

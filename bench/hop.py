#!/usr/bin/env python3
"""The cost of one proxy hop, side by side: direct, nginx, the bare forwarder, qwen-gateway.

Issue 16's measurement, in one run on loopback: a release mock Model Studio with 16-token
answers and no pacing; in front of it nginx (a reverse proxy with upstream keepalive: the
floor of one hop in C), `qwen-bench forward` (hyper + reqwest, nothing else) and one
qwen-gateway per `--gateway NAME=BIN`. wrk drives each target in a closed loop, at
concurrency 1 (added p50 over direct) and 32 (throughput as a fraction of direct), targets
interleaved within each round, `--rounds` rounds of `--seconds` each; figures are medians
over rounds.

    bench/hop.py                                     # target/release/qwen-gateway
    bench/hop.py --gateway old=/tmp/old --gateway new=target/release/qwen-gateway
    bench/hop.py --markdown bench/out/hop.md         # also write the tables and the goals
    bench/hop.py --h2c                               # also each gateway speaking h2c upstream

Chat has no direct equivalent: it is compared with the direct *streaming* `/responses` call
of the same answer, which is what the gateway itself makes upstream.
"""

import argparse
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from ab import MODEL, ROOT, add_binary_args, gateway_config, gateways_of, start, stop, wait_for  # noqa: E402

BODIES = {
    "responses": ("/v1/responses", {"model": MODEL, "input": "hello"}),
    "responses-stream": ("/v1/responses", {"model": MODEL, "input": "hello", "stream": True}),
    "chat": ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]}),
    "chat-stream": ("/v1/chat/completions",
                    {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hello"}]}),
}
# What the direct target and a plain proxy are asked instead of each path.
PLAIN = {"responses": "responses", "responses-stream": "responses-stream",
         "chat": "responses-stream", "chat-stream": "responses-stream"}

WRK_LUA = """
wrk.method = "POST"
wrk.path = "{path}"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-hop"
done = function(summary, latency, requests)
  io.write(string.format("HOP p50=%d rps=%.1f errors=%d status=%d\\n",
    latency:percentile(50), summary.requests / (summary.duration / 1e6),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
"""

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/nginx-body;
  proxy_temp_path {dir}/nginx-proxy;
  upstream mock {{ server {mock}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location /v1/ {{
      proxy_pass http://mock/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""


def free_port() -> int:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def find_nginx() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def start_mock(procs: list, binary: str, dir: pathlib.Path, tokens: int) -> str:
    """A release mock with `tokens`-token answers, no pacing, one event per write."""
    mock = start(procs, [binary, "--listen", "127.0.0.1:0", "--no-split", "--max-recorded", "1"], dir / "mock.log")
    subprocess.run(["curl", "-fsS", "-o", "/dev/null", "-X", "POST", f"{mock}/_mock/defaults",
                    "-d", json.dumps({"x-mock-tokens": str(tokens)})], check=True, timeout=10)
    return mock


def start_nginx(procs: list, nginx: str, dir: pathlib.Path, mock: str) -> tuple[str, int]:
    """nginx in front of `mock` (NGINX_CONF), once its port accepts connections: (base, pid)."""
    import socket
    import time
    port = free_port()
    conf = dir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=dir, mock=mock.removeprefix("http://"), port=port))
    p = subprocess.Popen([nginx, "-c", str(conf), "-p", str(dir)],
                         stdout=open(dir / "nginx.log", "wb"), stderr=subprocess.STDOUT)
    procs.append(p)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return f"http://127.0.0.1:{port}", p.pid
        except OSError:
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {(dir / 'nginx.log').read_text(errors='replace')[-500:]}")
            time.sleep(0.05)


def wrk(base: str, label: str, conns: int, seconds: int, dir: pathlib.Path) -> tuple[float, float]:
    path, body = BODIES[label]
    if base.endswith("#direct"):
        base, path = base.removesuffix("#direct"), path.removeprefix("/v1")
    lua = dir / f"{label}.lua"
    lua.write_text(WRK_LUA.format(path=path, body=json.dumps(body)))
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "-s", str(lua), base],
                         capture_output=True, text=True, timeout=seconds + 30)
    m = re.search(r"HOP p50=(\d+) rps=([\d.]+) errors=(\d+) status=(\d+)", out.stdout)
    if not m:
        raise RuntimeError(f"wrk {base} {label}: {out.stdout[-500:]} {out.stderr[-500:]}")
    if int(m.group(3)) or int(m.group(4)):
        raise RuntimeError(f"wrk {base} {label}: {m.group(3)} socket errors, {m.group(4)} non-2xx")
    return float(m.group(1)), float(m.group(2))


def main() -> None:
    ap = argparse.ArgumentParser()
    add_binary_args(ap)
    ap.add_argument("--forward", default=str(ROOT / "target/release/qwen-bench"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--only", help="comma-separated paths (default: all)")
    ap.add_argument("--markdown", help="write the tables (and the goals, met or missed) here")
    ap.add_argument("--h2c", action="store_true",
                    help="also run each gateway as 'NAME h2c', speaking HTTP/2 (prior knowledge) to the mock")
    args = ap.parse_args()
    gateways = gateways_of(args)
    # (target name, binary, h2c upstream)
    gateways = [(n, b, False) for n, b in gateways] + ([(f"{n} h2c", b, True) for n, b in gateways]
                                                       if args.h2c else [])
    if not shutil.which("wrk"):
        sys.exit("hop.py: wrk is not installed (bench/setup.sh installs it)")
    nginx = find_nginx()
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="qg-hop-") as d:
        dir = pathlib.Path(d)
        try:
            mock = start_mock(procs, args.mock, dir, args.tokens)
            targets = [("direct", mock + "#direct", False)]
            if nginx:
                targets.append(("nginx", start_nginx(procs, nginx, dir, mock)[0], False))
            fw = start(procs, [args.forward, "forward", "--upstream", mock], dir / "forward.log")
            targets.append(("bare forwarder", fw, False))
            env = dict(os.environ, AB_UPSTREAM_KEY="sk-hop-upstream")
            for name, binary, h2c in gateways:
                cfg = gateway_config(dir, mock, name.replace(" ", "-"), h2c=h2c)
                targets.append((name, start(procs, [binary, "serve", "--config", str(cfg)], dir / f"{name}.log", env),
                                True))
            labels = [label for label in BODIES if not args.only or label in args.only.split(",")]
            # figures[label][target][conns] = [(p50, rps) per round]
            figures: dict = {label: {t: {1: [], 32: []} for t, _, _ in targets} for label in labels}
            for r in range(args.rounds):
                for label in labels:
                    for conns in (1, 32):
                        for name, base, translates in targets:
                            if label.startswith("chat") and not translates and name != "direct":
                                continue
                            asked = label if translates else PLAIN[label]
                            figures[label][name][conns].append(wrk(base, asked, conns, args.seconds, dir))
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            stop(procs)
    report(args, figures, [t for t, _, _ in targets], [n for n, _, _ in gateways])


def med(samples: list, i: int) -> float | None:
    return statistics.median(s[i] for s in samples) if samples else None


def report(args, figures: dict, names: list[str], gateways: list[str]) -> None:
    lines = [f"{args.tokens}-token answers, no pacing; wrk closed loop, {args.rounds} interleaved rounds x "
             f"{args.seconds} s per target; medians over rounds. Chat is compared with the direct streaming call.",
             "",
             "| path | direct p50 µs | " + " | ".join(f"{n} added p50" for n in names[1:]) +
             " | " + " | ".join(f"{g} ÷ nginx" for g in gateways) + " |",
             "|---|---:|" + "---:|" * (len(names) - 1 + len(gateways))]
    goals = []
    for label, per in figures.items():
        d = med(per["direct"][1], 0)
        added = {n: (med(per[n][1], 0) - d) if per[n][1] else None for n in names[1:]}
        # Chat's baseline hop: nginx relaying the same direct streaming call.
        ng = med(figures.get(PLAIN[label], per)["nginx"][1], 0) if "nginx" in names else None
        ng_added = ng - med(figures.get(PLAIN[label], per)["direct"][1], 0) if ng is not None else None
        cells = [f"{a:+.0f}" if a is not None else "—" for a in added.values()]
        ratio = []
        for g in gateways:
            if ng_added and added[g] is not None:
                x = added[g] / ng_added
                ratio.append(f"{x:.1f}×")
                goals.append((f"{label}: {g} added p50 ≤ 1.5× nginx's", f"{added[g]:+.0f} µs vs {ng_added:+.0f} µs"
                              f" = {x:.2f}×", x <= 1.5))
            else:
                ratio.append("—")
        lines.append(f"| {label} | {d:.0f} | " + " | ".join(cells) + " | " + " | ".join(ratio) + " |")
    lines += ["", "| path, throughput at 32 connections | direct req/s | " +
              " | ".join(f"{n} × direct" for n in names[1:]) + " |",
              "|---|---:|" + "---:|" * (len(names) - 1)]
    for label, per in figures.items():
        d = med(per["direct"][32], 1)
        cells = []
        for n in names[1:]:
            v = med(per[n][32], 1)
            cells.append(f"{v / d:.2f}×" if v else "—")
            if n in gateways and v:
                floor = 0.65 if label.startswith("chat") else 0.75
                goals.append((f"{label}: {n} throughput ≥ {floor}× direct", f"{v:.0f} vs {d:.0f} req/s = "
                              f"{v / d:.2f}×", v / d >= floor))
        lines.append(f"| {label} | {d:.0f} | " + " | ".join(cells) + " |")
    lines += ["", "| goal | measured | |", "|---|---|---|"]
    lines += [f"| {g} | {m} | {'met' if ok else 'missed'} |" for g, m, ok in goals]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        pathlib.Path(args.markdown).write_text(text)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Events one core can relay: CPU time per relayed SSE event, side by side.

Issue 16's second CPU figure (the first is instructions per event, `ab.py --callgrind
--tokens N`). Long streamed `/v1/responses` answers (`--tokens`, default 1,000 events
each, no pacing) are driven through each target by wrk at `--conns` connections for
`--seconds`; the target's own CPU time (user + system, all threads, from /proc; nginx:
its worker) is read before and after. Events per CPU-second = streams completed × events
per stream ÷ CPU seconds: what one fully busy core would relay, whatever else shares the
machine (the mock and wrk do; their CPU is not counted).

    bench/events.py                          # nginx, bare forwarder (h1, h2c), qwen-gateway (h1, h2c)
    bench/events.py --gateway old=/tmp/old --gateway new=target/release/qwen-gateway
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
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from ab import MODEL, ROOT, add_binary_args, gateway_config, gateways_of, start, stop  # noqa: E402
from hop import find_nginx, start_mock, start_nginx  # noqa: E402

WRK_LUA = """
wrk.method = "POST"
wrk.path = "/v1/responses"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-events"
done = function(summary, latency, requests)
  io.write(string.format("EVENTS requests=%d errors=%d status=%d\\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
"""

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and its child processes (nginx's worker)."""
    total = 0.0
    pids = [pid]
    try:
        children = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        fields = pathlib.Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def events_per_stream(base: str) -> int:
    """Whole events in one streamed answer, counted through the target itself."""
    req = urllib.request.Request(base + "/v1/responses", method="POST",
                                 data=json.dumps({"model": MODEL, "input": "hello", "stream": True}).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer sk-events"})
    with urllib.request.urlopen(req, timeout=60) as r:
        body = r.read()
    return len(re.findall(rb"(?:\r\n|\n|\r)(?:\r\n|\n|\r)", body))


def drive(base: str, pid: int, conns: int, seconds: int, dir: pathlib.Path) -> tuple[int, float]:
    lua = dir / "events.lua"
    lua.write_text(WRK_LUA.format(body=json.dumps({"model": MODEL, "input": "hello", "stream": True})))
    before = cpu_seconds(pid)
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "30s", "-s", str(lua), base],
                         capture_output=True, text=True, timeout=seconds + 60)
    after = cpu_seconds(pid)
    m = re.search(r"EVENTS requests=(\d+) errors=(\d+) status=(\d+)", out.stdout)
    if not m:
        raise RuntimeError(f"wrk {base}: {out.stdout[-500:]} {out.stderr[-500:]}")
    if int(m.group(2)) or int(m.group(3)):
        raise RuntimeError(f"wrk {base}: {m.group(2)} socket errors, {m.group(3)} non-2xx")
    return int(m.group(1)), after - before


def main() -> None:
    ap = argparse.ArgumentParser()
    add_binary_args(ap)
    ap.add_argument("--forward", default=str(ROOT / "target/release/qwen-bench"))
    ap.add_argument("--tokens", type=int, default=1000)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    gateways = gateways_of(args)
    if not shutil.which("wrk"):
        sys.exit("events.py: wrk is not installed (bench/setup.sh installs it)")
    nginx = find_nginx()
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="qg-events-") as d:
        dir = pathlib.Path(d)
        try:
            mock = start_mock(procs, args.mock, dir, args.tokens)
            targets = []  # (name, base, pid)
            if nginx:
                targets.append(("nginx", *start_nginx(procs, nginx, dir, mock)))
            for name, extra in (("bare forwarder", []), ("bare forwarder h2c", ["--h2c"])):
                base = start(procs, [args.forward, "forward", "--upstream", mock, *extra],
                             dir / f"{name.replace(' ', '-')}.log")
                targets.append((name, base, procs[-1].pid))
            env = dict(os.environ, AB_UPSTREAM_KEY="sk-events-upstream")
            for name, binary in gateways:
                for suffix, h2c in (("", False), (" h2c", True)):
                    cfg = gateway_config(dir, mock, (name + suffix).replace(" ", "-"), h2c=h2c)
                    base = start(procs, [binary, "serve", "--config", str(cfg)],
                                 dir / f"{(name + suffix).replace(' ', '-')}.log", env)
                    targets.append((name + suffix, base, procs[-1].pid))
            per_stream = {name: events_per_stream(base) for name, base, _ in targets}
            rates: dict[str, list[float]] = {name: [] for name, _, _ in targets}
            streams: dict[str, list[int]] = {name: [] for name, _, _ in targets}
            for r in range(args.rounds):
                for name, base, pid in targets:
                    done, cpu = drive(base, pid, args.conns, args.seconds, dir)
                    rates[name].append(done * per_stream[name] / cpu if cpu > 0 else float("nan"))
                    streams[name].append(done)
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            stop(procs)
    print(f"\n{args.tokens}-token streamed answers, no pacing, wrk at {args.conns} connections, "
          f"{args.rounds} interleaved rounds x {args.seconds} s; medians over rounds.\n")
    print("| target | events per stream | streams per round | events per CPU-second | µs of CPU per event |")
    print("|---|---:|---:|---:|---:|")
    for name, _, _ in targets:
        rate = statistics.median(rates[name])
        print(f"| {name} | {per_stream[name]:,} | {statistics.median(streams[name]):,.0f} | "
              f"{rate:,.0f} | {1e6 / rate:.2f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Side-by-side A/B of gateway binaries (e.g. before and after a change), in one run.

Starts one release mock Model Studio and, in front of it, one gateway per binary given; then
sends sequential requests (one keep-alive connection per target, targets interleaved request
by request so drift on the machine hits all alike) and prints, per path, the median latency
of each target and the added latency over a direct call to the mock. Optional callgrind mode
counts instructions per request instead (repeatable on a noisy machine).

    bench/ab.py --gateway old=/path/to/old --gateway new=target/release/qwen-gateway
    bench/ab.py ... --rounds 5 --requests 400
    bench/ab.py ... --callgrind            # instructions per request, each path, each binary
    bench/ab.py --gateway off=B --gateway on=B --extra 'on=[responses]\nconformance = true'
    bench/ab.py --gateway h1=B --gateway h2=B --h2c h2 --callgrind --forwarder target/release/qwen-bench


Paths: `/v1/responses` non-streaming (16 tokens), streaming (16 tokens), `/v1/chat/completions`
non-streaming and streaming; with `--tail-ms`, the mock ends each streamed body that long after
its last event (as real upstreams often do), which is where upstream connection reuse shows.
"""

import argparse
import http.client
import json
import os
import pathlib
import re
import statistics
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODEL = "qwen3-max-2026-01-23"
PATHS = {
    "responses": ("/v1/responses", {"model": MODEL, "input": "hello"}),
    "responses-stream": ("/v1/responses", {"model": MODEL, "input": "hello", "stream": True}),
    "chat": ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]}),
    "chat-stream": (
        "/v1/chat/completions",
        {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hello"}]},
    ),
}


def wait_for(log: pathlib.Path, proc: subprocess.Popen, timeout: float = 120.0,
             pattern: str = r"(http://127\.0\.0\.1:\d+)") -> str:
    """The first URL `pattern` finds in `log` (its group 1), once the server wrote it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, log.read_text(errors="replace") if log.exists() else "")
        if m:
            return m.group(1)
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)
    raise TimeoutError(f"no listening line in {log}")


class Target:
    def __init__(self, name: str, base: str, prefix: str):
        self.name, self.prefix = name, prefix
        host, port = base.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def call(self, path: str, body: bytes) -> float:
        start = time.perf_counter()
        self.conn.request("POST", self.prefix + path, body=body,
                          headers={"content-type": "application/json", "authorization": "Bearer sk-ab"})
        res = self.conn.getresponse()
        data = res.read()
        elapsed = time.perf_counter() - start
        if res.status != 200:
            raise RuntimeError(f"{self.name} {path}: {res.status} {data[:300]!r}")
        return elapsed


def start(procs: list, cmd: list[str], log: pathlib.Path, env=None) -> str:
    proc = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env)
    procs.append(proc)
    return wait_for(log, proc)


def stop(procs: list) -> None:
    """Ends the servers a run started: asked first, killed if they do not go in 10 s."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def gateway_config(dir: pathlib.Path, mock: str, name: str = "gw", extra: str = "",
                   h2c: bool = False) -> pathlib.Path:
    """`h2c`: the region speaks HTTP/2 with prior knowledge to the mock (which serves both),
    as the gateway speaks HTTP/2 to Model Studio over TLS."""
    cfg = dir / f"{name}.toml"
    cfg.write_text(extra + f"""
[server]
listen = "127.0.0.1:0"
[upstream]
regions = ["bench"]
[regions.bench]
base_url = "{mock}"
api_key_env = ["AB_UPSTREAM_KEY"]
{'http2 = "prior_knowledge"' if h2c else ""}
[store]
url = "memory"
""")
    return cfg


def extra_toml(args, name: str) -> str:
    """`--extra NAME='[section]\\nkey = value'`: TOML put before the common config of NAME."""
    return "".join(t.replace("\\n", "\n") + "\n" for n, t in args.extra if n == name)


def latency(args, dir: pathlib.Path) -> None:
    procs: list[subprocess.Popen] = []
    try:
        mock = start(procs, [args.mock, "--listen", "127.0.0.1:0", "--max-recorded", "1"], dir / "mock.log")
        defaults = {"x-mock-tokens": str(args.tokens)}
        if args.tail_ms:
            defaults["x-mock-tail-delay-ms"] = str(args.tail_ms)
        c = http.client.HTTPConnection(*mock.removeprefix("http://").split(":"))
        c.request("POST", "/_mock/defaults", body=json.dumps(defaults))
        c.getresponse().read()
        env = dict(os.environ, AB_UPSTREAM_KEY="sk-ab-upstream")
        targets = []
        for name, binary in args.gateway:
            cfg = gateway_config(dir, mock, name, extra_toml(args, name), h2c=name in args.h2c)
            base = start(procs, [binary, "serve", "--config", str(cfg)], dir / f"{name}.log", env)
            targets.append(Target(name, base, ""))
        direct = Target("direct", mock, "")
        results = {}
        for label, (path, body) in PATHS.items():
            if args.only and label not in args.only.split(","):
                continue
            # Chat has no direct equivalent: it is compared with the direct streaming call of
            # the same answer (what the gateway itself makes upstream).
            ts = [direct] + targets
            raw = json.dumps(body).encode()
            upstream_path = "/responses"
            direct_raw = raw if not label.startswith("chat") else json.dumps(PATHS["responses-stream"][1]).encode()
            per_round = {t.name: [] for t in ts}
            for _ in range(args.rounds):
                samples = {t.name: [] for t in ts}
                for t in ts:  # warm-up
                    for _ in range(20):
                        t.call(*((upstream_path, direct_raw) if t is direct else (path, raw)))
                for _ in range(args.requests):
                    for t in ts:
                        call = (upstream_path, direct_raw) if t is direct else (path, raw)
                        samples[t.name].append(t.call(*call))
                for n, s in samples.items():
                    per_round[n].append(statistics.median(s) * 1e6)
            results[label] = {n: statistics.median(v) for n, v in per_round.items()}
        print(f"\nmedian latency, µs (sequential, {args.requests} requests x {args.rounds} rounds per target,"
              f" {args.tokens}-token answers{', tail ' + str(args.tail_ms) + ' ms' if args.tail_ms else ''})\n")
        names = [n for n, _ in args.gateway]
        print("| path | direct | " + " | ".join(names) + " | " + " | ".join(f"{n} added" for n in names) + " |")
        print("|---|---:|" + "---:|" * (2 * len(names)))
        for label, r in results.items():
            d = r["direct"]
            cells = [f"{r[n]:.0f}" for n in names]
            added = [f"{r[n] - d:+.0f}" for n in names]
            print(f"| {label} | {d:.0f} | " + " | ".join(cells) + " | " + " | ".join(added) + " |")
    finally:
        stop(procs)


def startup_spin(out: pathlib.Path) -> int:
    """Instructions of the metrics clock's start-up calibration (quanta), which spins for a
    wall-clock time: its count varies from run to run by more than a request costs, so it
    is taken out of the totals before they are compared."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", str(out)],
                          capture_output=True, text=True).stdout
    for line in text.splitlines():
        if "quanta::Calibration::calibrate" in line:
            m = re.match(r"\s*([\d,]+)", line)
            if m:
                return int(m.group(1).replace(",", ""))
    return 0


WARM_UP = 10


def callgrind(args, dir: pathlib.Path) -> None:
    """(instructions(N2) - instructions(N1)) / (N2 - N1) per path and binary."""
    procs: list[subprocess.Popen] = []
    try:
        mock = start(procs, [args.mock, "--listen", "127.0.0.1:0", "--no-split", "--max-recorded", "1"],
                     dir / "mock.log")
        c = http.client.HTTPConnection(*mock.removeprefix("http://").split(":"))
        c.request("POST", "/_mock/defaults", body=json.dumps({"x-mock-tokens": str(args.tokens)}))
        c.getresponse().read()
        env = dict(os.environ, AB_UPSTREAM_KEY="sk-ab-upstream")
        n1, n2 = 50, 50 + args.requests
        print(f"\ninstructions per request under callgrind ((N2 - N1) / {n2 - n1})\n")
        # (column, command); the bare forwarder relays /v1/responses only.
        columns = [(name, [binary, "serve", "--config",
                           str(gateway_config(dir, mock, name, extra_toml(args, name), h2c=name in args.h2c))])
                   for name, binary in args.gateway]
        if args.forwarder:
            columns.append(("bare forwarder", [args.forwarder, "forward", "--upstream", mock]))
            if args.h2c:
                columns.append(("bare forwarder h2c", [args.forwarder, "forward", "--upstream", mock, "--h2c"]))
        print("| path | " + " | ".join(n for n, _ in columns) + " |")
        print("|---|" + "---:|" * len(columns))
        for label, (path, body) in PATHS.items():
            if args.only and label not in args.only.split(","):
                continue
            row = []
            for name, command in columns:
                if name.startswith("bare forwarder") and label.startswith("chat"):
                    row.append(None)
                    continue
                totals = []
                for n in (n1, n2):
                    out = dir / f"{name.replace(' ', '-')}-{label}-{n}.callgrind"
                    log = dir / f"{name.replace(' ', '-')}-{label}-{n}.log"
                    # Counting starts after start-up and a warm-up: one-time work (the metrics
                    # clock's calibration, which spins for a wall-clock time, the first
                    # upstream connection) stays out whatever the compiler inlined it into.
                    proc = subprocess.Popen(
                        ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                         f"--callgrind-out-file={out}", *command],
                        stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env)
                    # (valgrind's own "Command:" line names the forwarder's upstream URL)
                    base = wait_for(log, proc, pattern=r"(?:forwarding|listening on) (http://127\.0\.0\.1:\d+)"
                                    if name.startswith("bare forwarder") else r"(http://127\.0\.0\.1:\d+)")
                    t = Target(name, base, "")
                    raw = json.dumps(body).encode()
                    for _ in range(WARM_UP):
                        t.call(path, raw)
                    subprocess.run(["callgrind_control", "--instr=on", str(proc.pid)], check=True,
                                   capture_output=True, timeout=120)
                    for _ in range(n):
                        t.call(path, raw)
                    t.conn.close()
                    proc.terminate()
                    proc.wait(timeout=120)
                    text = out.read_text(errors="replace")
                    m = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
                    totals.append(int(m.group(1)) - startup_spin(out))
                row.append((totals[1] - totals[0]) // (n2 - n1))
            print(f"| {label} | " + " | ".join(f"{v:,}" if v is not None else "—" for v in row) + " |")
    finally:
        for p in procs:
            p.terminate()


def add_binary_args(ap: argparse.ArgumentParser, gateway_required: bool = False) -> None:
    """--gateway NAME=BINARY (repeatable) and --mock BINARY, as every bench script takes them."""
    help = "NAME=BINARY (repeatable)" if gateway_required else \
        "NAME=BINARY (repeatable; default qwen-gateway=target/release/qwen-gateway)"
    ap.add_argument("--gateway", action="append", required=gateway_required,
                    type=lambda s: tuple(s.split("=", 1)), help=help)
    ap.add_argument("--mock", default=str(ROOT / "target/release/mock-model-studio"))


def gateways_of(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The --gateway pairs given, else the release build as `qwen-gateway`."""
    return args.gateway or [("qwen-gateway", str(ROOT / "target/release/qwen-gateway"))]


def main() -> None:
    ap = argparse.ArgumentParser()
    add_binary_args(ap, gateway_required=True)
    ap.add_argument("--extra", action="append", default=[], type=lambda s: tuple(s.split("=", 1)),
                    help="NAME=TOML: extra config for gateway NAME (\\n for newlines; repeatable)")
    ap.add_argument("--only", help="comma-separated paths to run (default: all)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--tail-ms", type=int, default=0)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--h2c", action="append", default=[], metavar="NAME",
                    help="gateway NAME speaks HTTP/2 with prior knowledge to the mock (repeatable)")
    ap.add_argument("--forwarder", metavar="QWEN_BENCH",
                    help="with --callgrind: also profile the bare forwarder (`QWEN_BENCH forward`; "
                         "over h2c too when any --h2c is given)")
    ap.add_argument("--out", help="keep logs and callgrind files in this directory")
    args = ap.parse_args()
    if args.out:
        pathlib.Path(args.out).mkdir(parents=True, exist_ok=True)
        (callgrind if args.callgrind else latency)(args, pathlib.Path(args.out))
        return
    with tempfile.TemporaryDirectory(prefix="qg-ab-") as d:
        (callgrind if args.callgrind else latency)(args, pathlib.Path(d))


if __name__ == "__main__":
    main()

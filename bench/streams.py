#!/usr/bin/env python3
"""Memory per open stream, side by side: the bare forwarder, qwen-gateway over HTTP/1.1 and
qwen-gateway speaking h2c to the mock.

A release mock answers every request with 100 tokens 1.5 s apart, so streams stay open;
`qwen-bench streams` opens N of them through each target in turn (HTTP/1.1 from the client,
one connection each), holds them, and reports the server's RSS before and while held.

    bench/streams.py                  # 3,000 streams per target
    bench/streams.py --n 1000 --gateway old=/tmp/qwen-gateway-old
"""

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from ab import ROOT, add_binary_args, gateway_config, gateways_of, start, wait_for  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    add_binary_args(ap)
    ap.add_argument("--bench", default=str(ROOT / "target/release/qwen-bench"))
    args = ap.parse_args()
    gateways = gateways_of(args)
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="qg-streams-") as d:
        dir = pathlib.Path(d)
        try:
            mock = start(procs, [args.mock, "--listen", "127.0.0.1:0", "--max-recorded", "1"], dir / "mock.log")
            subprocess.run(["curl", "-fsS", "-o", "/dev/null", "-X", "POST", f"{mock}/_mock/defaults", "-d",
                            json.dumps({"x-mock-tokens": "100", "x-mock-delay-ms": "1500"})], check=True, timeout=10)
            env = dict(os.environ, AB_UPSTREAM_KEY="sk-streams-upstream")
            targets = []
            fw = subprocess.Popen([args.bench, "forward", "--upstream", mock], stdout=open(dir / "fw.log", "wb"),
                                  stderr=subprocess.STDOUT)
            procs.append(fw)
            targets.append(("bare forwarder", wait_for(dir / "fw.log", fw), fw.pid))
            for name, binary in gateways:
                for h2c in (False, True):
                    label = f"{name} h2c" if h2c else name
                    cfg = gateway_config(dir, mock, label.replace(" ", "-"), h2c=h2c)
                    log = dir / f"{label.replace(' ', '-')}.log"
                    p = subprocess.Popen([binary, "serve", "--config", str(cfg)], stdout=open(log, "wb"),
                                         stderr=subprocess.STDOUT, env=env)
                    procs.append(p)
                    targets.append((label, wait_for(log, p), p.pid))
            rows = []
            for label, base, pid in targets:
                out = subprocess.run([args.bench, "streams", "--base", base + "/v1", "--n", str(args.n),
                                      "--pid", str(pid), "--hold-secs", "3"],
                                     capture_output=True, text=True, timeout=600)
                print(f"## {label}\n{out.stdout.strip()}\n{out.stderr.strip()[-400:]}".rstrip(), flush=True)
                f = {k: v for k, v in re.findall(r"(\w+): (\d+(?:\.\d+)?)", out.stdout)}
                if "opened" in f and int(f["opened"]) > 0:
                    grown_kb = (int(f["rss_kb"]) - int(f["rss_before_kb"])) * 1.024  # KiB → KB
                    rows.append((label, int(f["opened"]), int(f["rss_kb"]) * 1.024 / 1000,
                                 grown_kb / int(f["opened"])))
                else:
                    rows.append((label, 0, None, None))
        finally:
            for p in procs:
                p.terminate()
    print("\n| target | streams held | RSS held (MB) | KB per open stream |\n|---|---:|---:|---:|")
    for label, opened, rss, per in rows:
        cells = [f"{opened:,}", f"{rss:.1f}" if rss else "—", f"{per:.1f}" if per else "—"]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

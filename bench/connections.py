#!/usr/bin/env python3
"""Per-connection memory of qwen-gateway: 1,000 idle client connections holding 0, 16 and 60 KB
of an unfinished request head each (the most server.max_header_bytes lets a client park
there), RSS growth per connection. Usage: bench/connections.py [path/to/qwen-gateway]
(default target/release/qwen-gateway; run from the repository root)."""
import socket, subprocess, time, os, sys, re
cfg = "/tmp/gwc.toml"
open(cfg, "w").write('''[server]
listen = "127.0.0.1:18181"
header_read_timeout = "60s"
max_connections = 10000
[upstream]
regions = ["r0"]
[regions.r0]
base_url = "http://127.0.0.1:1"
api_key_env = ["K"]
[store]
url = "memory"
''')
env = dict(os.environ, K="sk-test-0123456789abc", RUST_LOG="warn")
p = subprocess.Popen([sys.argv[1] if len(sys.argv) > 1 else "target/release/qwen-gateway", "serve", "--config", cfg], env=env, stderr=subprocess.DEVNULL)
time.sleep(1.5)
def rss():
    return int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{p.pid}/status").read()).group(1))
base = rss()
results = []
for head_kb, n in [(0, 1000), (16, 1000), (60, 1000)]:
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", 18181))
        if head_kb:
            s.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-pad: " + b"a" * (head_kb * 1024 - 40))
        socks.append(s)
    time.sleep(1.5)
    r = rss()
    results.append((head_kb, n, (r - base) / n))
    for s in socks: s.close()
    time.sleep(1.0)
    base = rss()
p.terminate(); p.wait()
for head_kb, n, per in results:
    print(f"{n} connections, {head_kb} KB of unfinished head each: +{per:.1f} KB RSS per connection")

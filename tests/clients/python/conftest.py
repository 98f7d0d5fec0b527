"""Starts the real binaries on loopback ports: mock Model Studio, then qwen-gateway in front of it.

The binaries come from `cargo build --bins` (scripts/test.sh does that first); override with
QWEN_GATEWAY_BIN / MOCK_MODEL_STUDIO_BIN.

openai2/ holds the clients that cap `openai` below 3 (LlamaIndex, instructor): they run from a
second venv built from openai2/requirements.txt and are collected only where they are installed.
"""

import importlib.util
import os
import pathlib
import re
import subprocess
import tempfile
import time

import pytest
from openai import OpenAI

ROOT = pathlib.Path(__file__).resolve().parents[3]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
GATEWAY_BIN = os.environ.get("QWEN_GATEWAY_BIN", str(TARGET / "qwen-gateway"))
MOCK_BIN = os.environ.get("MOCK_MODEL_STUDIO_BIN", str(TARGET / "mock-model-studio"))
UPSTREAM_KEY = "sk-python-upstream-4c1d"
MODEL = "qwen3-max-2026-01-23"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}

if importlib.util.find_spec("llama_index") is None or importlib.util.find_spec("instructor") is None:
    collect_ignore = ["openai2"]


def _wait_for(path: pathlib.Path, pattern: str, proc: subprocess.Popen, timeout: float = 15.0) -> str:
    """Polls a log file (bounded) for `pattern`, returning its first group."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        match = re.search(pattern, text)
        if match:
            return match.group(1)
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited early:\n{text}")
        time.sleep(0.05)
    raise TimeoutError(f"{pattern!r} never appeared in {path}")


class Processes:
    def __init__(self) -> None:
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="qg-py-"))
        self.procs: list[subprocess.Popen] = []

    def spawn(self, args: list[str], log_name: str, env: dict | None = None) -> tuple[subprocess.Popen, pathlib.Path]:
        log = self.dir / log_name
        handle = open(log, "wb")
        proc = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, env=env)
        self.procs.append(proc)
        return proc, log

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def stack():
    procs = Processes()
    try:
        mock, mock_log = procs.spawn([MOCK_BIN, "--listen", "127.0.0.1:0"], "mock.log")
        mock_url = _wait_for(mock_log, r"listening on (http://\S+)", mock)
        config = procs.dir / "gateway.toml"
        config.write_text(
            f"""
[server]
listen = "127.0.0.1:0"
[upstream]
regions = ["local"]
first_byte_timeout = "5s"
stream_idle_timeout = "5s"
# Tests provoke rate limits on purpose: the one key must not rest between tests.
rate_limit_cooldown = "1ms"
# The mock's fault controls (x-mock-*) must reach it through the gateway.
forward_headers = ["accept", "content-type", "user-agent", "idempotency-key", "openai-beta", "x-mock-*"]
[regions.local]
base_url = "{mock_url}"
api_key_env = ["PY_TEST_UPSTREAM_KEY"]
[store]
url = "memory"
"""
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("DASHSCOPE")}
        env["PY_TEST_UPSTREAM_KEY"] = UPSTREAM_KEY
        env.setdefault("RUST_LOG", "info")
        gateway, gateway_log = procs.spawn([GATEWAY_BIN, "serve", "--config", str(config)], "gateway.log", env)
        addr = _wait_for(gateway_log, r"listening on http://(\S+?)/v1", gateway)
        yield {
            "base_url": f"http://{addr}/v1",
            "mock_url": mock_url,
            "gateway_log": gateway_log,
        }
    finally:
        procs.stop()


@pytest.fixture()
def client(stack) -> OpenAI:
    # The client's own key is deliberately not the upstream key: the gateway must replace it.
    return OpenAI(base_url=stack["base_url"], api_key="sk-client-not-upstream", max_retries=0, timeout=20)


@pytest.fixture()
def mock_requests(stack):
    """Reads what the mock received, through its introspection endpoint."""
    import json
    import urllib.request

    def read() -> list[dict]:
        with urllib.request.urlopen(stack["mock_url"] + "/_mock/requests", timeout=5) as res:
            return json.loads(res.read())

    return read


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Fails any test whose client library looks up or connects to anything but loopback
    (tokenizer downloads, telemetry, update checks)."""
    import socket

    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock, address):
        if isinstance(address, tuple) and address[0] not in LOOPBACK:
            raise OSError(f"test tried to reach {address!r}: only loopback is allowed")
        return real_connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in LOOPBACK:
            raise OSError(f"test tried to resolve {host!r}: only loopback is allowed")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

"""Draws bench/latency.png from bench/out/results.json: latency distributions (ECDFs) of the
sequential runs, one panel per scenario, one line per target. Usage: chart.py RESULTS PNG."""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter, ScalarFormatter  # noqa: E402

PANELS = [
    ("c1", "non-streaming /v1/responses (sequential)", 1e3, "µs"),
    ("chat", "non-streaming /v1/chat/completions", 1e3, "µs"),
    ("sse.ttfb", "streaming /v1/responses: first byte", 1e3, "µs"),
    ("sse.ttlb", "streaming /v1/responses: last byte", 1.0, "ms"),
    ("chatsse.ttfb", "streaming chat: first byte", 1e3, "µs"),
    ("chatsse.ttlb", "streaming chat: last byte", 1.0, "ms"),
]
COLORS = {
    "direct": "black",
    "qwen-gateway": "tab:blue",
    "LiteLLM": "tab:red",
    "Portkey": "tab:green",
    "bare forwarder": "tab:gray",
}
# The floor of one hop: drawn dashed so it reads as a reference, not a contender.
STYLES = {"bare forwarder": "--"}


def main(src: str, dst: str) -> None:
    with open(src) as f:
        results = json.load(f)
    samples = results["samples_us"]
    panels = [p for p in PANELS if p[0] in samples]
    cols = 2
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(12, 3.6 * rows), squeeze=False)
    for ax, (key, title, _, unit) in zip(axes.flat, panels):
        order = results.get("targets") or list(samples[key])
        for target in sorted(samples[key], key=lambda t: order.index(t) if t in order else 99):
            values = samples[key][target]
            if not values:
                continue
            xs = sorted(v / 1000.0 if unit == "ms" else v for v in values)
            ys = [(i + 1) / len(xs) for i in range(len(xs))]
            label = f"{target} (p50 {xs[len(xs) // 2]:.0f} {unit})" if unit == "µs" else (
                f"{target} (p50 {xs[len(xs) // 2]:.1f} {unit})")
            if key.startswith("chat") and target == "direct":
                label = label.replace("direct", "direct /responses")
            ax.step(
                xs,
                ys,
                where="post",
                label=label,
                color=COLORS.get(target),
                linestyle=STYLES.get(target, "-"),
                linewidth=1.4,
            )
        if unit == "µs":  # spans decades: log scale
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"latency ({unit}{', log scale' if unit == 'µs' else ''})")
        ax.set_ylabel("fraction of requests ≤ x")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    mode = "quick" if results.get("quick") else "full"
    fig.suptitle(
        f"Latency distributions on loopback, {results.get('date', '')} ({mode}, "
        f"{results.get('rounds')} round(s))",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

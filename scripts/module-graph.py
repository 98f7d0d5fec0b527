#!/usr/bin/env python3
"""The crate's module import graph, from the source: which module names which (`crate::a::b`,
`super::x`, `use` lists included), its circles (strongly connected components), and the layers
lib.rs describes. Files are modules (`src/a/b.rs` and `src/a/b/mod.rs` are `a::b`); a module's
inline `mod tests` counts as the module (test code may reach anywhere, but is excluded with
--no-tests).

    scripts/module-graph.py                 # edges between top-level modules, and circles
    scripts/module-graph.py --files         # edges between files (modules), and circles
    scripts/module-graph.py --check         # exit 1 when there is a circle between files

Only names that resolve to a file of the crate count; `crate::a::Item` is an edge to `a`.
"""

import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1] / "src"


def modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in ROOT.rglob("*.rs"):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "mod":
            parts = parts[:-1]
        if parts in (["lib"], ["main"]):
            continue
        found["::".join(parts)] = path
    return found


def strip_tests(text: str) -> str:
    """Drops `#[cfg(test)] mod x { ... }` blocks (brace-matched)."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def expand_use(path: str) -> list[str]:
    """`a::{b, c::{d}}` → [`a::b`, `a::c::d`] (good enough for module resolution)."""
    m = re.match(r"^(.*?)\{(.*)\}$", path.strip())
    if not m:
        return [path.strip()]
    head, body = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur += ch
    parts.append(cur)
    return [x for p in parts if p.strip() for x in expand_use(head + p.strip())]


def references(module: str, text: str) -> set[str]:
    """Absolute paths (`a::b::Item`) this module names."""
    self_parts = module.split("::")
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", text, re.S):
        paths += expand_use(re.sub(r"\s+", "", m.group(1)))
    paths += re.findall(r"\b((?:crate|super)(?:::\w+)+)", text)
    out = set()
    for p in paths:
        p = re.sub(r"\bas\s+\w+$", "", p).strip()
        parts = p.split("::")
        if parts[0] == "crate":
            out.add("::".join(parts[1:]))
        elif parts[0] == "super":
            base = self_parts[:-1] if not is_dir_module(module) else self_parts
            while parts and parts[0] == "super":
                parts = parts[1:]
                base = base[:-1] if base is not self_parts else self_parts[:-1]
            out.add("::".join(base + parts))
        elif parts[0] == "self":
            out.add("::".join(self_parts + parts[1:]))
    return out


DIR_MODULES: set[str] = set()

# The layers src/lib.rs describes: a module may use only modules of lower layers.
LAYERS = {
    "error": 0, "usage": 0, "calendar": 0, "sse": 0, "header_policy": 0,
    "log_fields": 0,
    "config": 1, "model_studio": 1,
    "store": 2, "models": 2, "translate": 2, "upstream": 2,
    "auth": 3, "conversation": 3, "telemetry": 3,
    "request_context": 4, "ledger": 4,
    "server": 5,
    "cli": 6,
}


def is_dir_module(module: str) -> bool:
    return module in DIR_MODULES


def resolve(path: str, known: dict[str, pathlib.Path]) -> str | None:
    parts = path.split("::")
    while parts:
        name = "::".join(parts)
        if name in known:
            return name
        parts = parts[:-1]
    return None


def sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", action="store_true", help="file-level graph")
    ap.add_argument("--no-tests", action="store_true", help="ignore #[cfg(test)] modules")
    ap.add_argument("--check", action="store_true", help="exit 1 on a circle between files")
    args = ap.parse_args()
    known = modules()
    for name, path in known.items():
        if path.name == "mod.rs":
            DIR_MODULES.add(name)
    files = args.files or args.check
    graph: dict[str, set[str]] = {}
    for name, path in sorted(known.items()):
        if name.split("::")[-1] == "tests" or "::tests::" in name:
            if args.no_tests or args.check:
                continue
        # Comments (doc links included) name modules without importing them.
        text = "\n".join(l for l in path.read_text().splitlines() if not l.lstrip().startswith("//"))
        if args.no_tests or args.check:
            text = strip_tests(text)
        node = name if files else name.split("::")[0]
        for ref in references(name, text):
            target = resolve(ref, known)
            if target is None:
                continue
            # A module's own children and its parent's mod.rs are its parts, not imports.
            if target == name or target.startswith(name + "::") or name.startswith(target + "::"):
                continue
            dest = target if files else target.split("::")[0]
            if dest != node:
                graph.setdefault(node, set()).add(dest)
        graph.setdefault(node, set())
    for v in sorted(graph):
        print(f"{v} -> {', '.join(sorted(graph[v])) or '-'}")
    circles = sccs(graph)
    print()
    top = {}
    for v, ws in graph.items():
        for w in ws:
            top.setdefault(v.split("::")[0], set()).add(w.split("::")[0])
    upward = []
    for v, ws in sorted(top.items()):
        for w in sorted(ws):
            if v == w:
                continue
            if v not in LAYERS or w not in LAYERS:
                upward.append(f"{v} -> {w}: a module missing from LAYERS (and lib.rs)")
            elif LAYERS[w] >= LAYERS[v]:
                upward.append(f"{v} (layer {LAYERS[v]}) -> {w} (layer {LAYERS[w]})")
    for u in upward:
        print("not downward:", u)
    if not upward:
        print("every import goes to a lower layer")
    if circles:
        for c in circles:
            print("circle:", " <-> ".join(c))
    else:
        print("no circles")
    return 1 if ((circles or upward) and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())

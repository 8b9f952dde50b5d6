"""The architecture of docs/ARCHITECTURE.md, checked: no import circle in the
Python package (lazy imports inside functions included) nor between the Rust
modules (``use crate::`` / ``super::`` paths), and every public module imports
alone in a fresh interpreter (which catches init-order circles)."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "lfr_rs"
SRC = ROOT / "src"


def _python_modules():
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    out["lfr_rs._native"] = PACKAGE / "_native.pyi"  # the extension module: a leaf
    return out


def _resolve(target, modules):
    """The module an import of ``target`` (a dotted name) executes last: the longest known prefix."""
    parts = target.split(".")
    for k in range(len(parts), 0, -1):
        name = ".".join(parts[:k])
        if name in modules:
            return name
    return None


def python_graph():
    modules = _python_modules()
    graph = {m: set() for m in modules}
    for name, path in modules.items():
        if path.suffix == ".pyi":
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):  # imports only for type checkers never run
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                # `from pkg import sub` imports the submodule when there is one
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                dep = _resolve(t, modules) if t.startswith("lfr_rs") else None
                if dep is None or dep == name:
                    continue
                graph[name].add(dep)
                # importing a.b.c first runs the __init__ of a.b (unless the importer lives inside a.b)
                parts = dep.split(".")
                for k in range(2, len(parts)):
                    parent = ".".join(parts[:k])
                    if parent in modules and not (name + ".").startswith(parent + "."):
                        graph[name].add(parent)
    return graph


def _rust_modules():
    out = {}
    for path in SRC.rglob("*.rs"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] in ("mod", "lib"):
            parts = parts[:-1]
        out["::".join(["crate", *parts])] = path
    return out


_USE = re.compile(r"\buse\s+((?:crate|super)(?:::\w+)*)(?:::\{([^;]*)\})?")


def rust_graph():
    modules = _rust_modules()
    graph = {m: set() for m in modules}
    for name, path in modules.items():
        is_dir = path.name in ("mod.rs", "lib.rs")
        text = re.sub(r"#\[cfg\(test\)\]\s*mod tests \{.*", "", path.read_text(), flags=re.S)  # unit tests aside
        for m in _USE.finditer(text):
            head, group = m.group(1), m.group(2)
            if head.startswith("super"):
                parent = name if is_dir else name.rpartition("::")[0]
                head = parent.rpartition("::")[0] + head[len("super"):] if "::" in parent else head
            paths = [head] + ([f"{head}::{g.strip().split('::')[0]}" for g in group.split(",") if g.strip()] if group else [])
            for p in paths:
                parts = p.split("::")
                for k in range(len(parts), 0, -1):
                    cand = "::".join(parts[:k])
                    if cand in modules:
                        if cand != name and not name.startswith(cand + "::"):
                            graph[name].add(cand)
                        break
    return graph


def cycles(graph):
    """The strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
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

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_in_the_python_package():
    found = cycles(python_graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_package_never_imports_itself_from_inside():
    offenders = [m for m, deps in python_graph().items() if "lfr_rs" in deps]
    assert not offenders, f"modules importing from `lfr_rs` itself (import from the leaf module instead): {offenders}"


def test_lower_layers_do_not_import_experiments_or_drawing():
    graph = python_graph()
    upper = ("lfr_rs.experiments", "lfr_rs.cli", "lfr_rs.plots")
    low = [m for m in graph if not m.startswith(upper) and m not in ("lfr_rs", "lfr_rs.__main__")]
    bad = {m: sorted(d for d in graph[m] if d.startswith(upper)) for m in low}
    assert not {m: d for m, d in bad.items() if d}


def test_no_module_circle_in_the_rust_crate():
    graph = rust_graph()
    assert "crate::error" in graph and graph["crate::attacks::pgd"], "the Rust walk found no edges"
    found = cycles(graph)
    assert not found, "module circles: " + "; ".join(" <-> ".join(c) for c in found)


def _public_modules():
    names = sorted(_python_modules())
    return [n for n in names if not any(part.startswith("_") for part in n.split(".")[1:]) and n != "lfr_rs"]


@pytest.mark.parametrize("module", _public_modules())
def test_each_public_module_imports_alone(module):
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_import_lfr_rs_loads_no_training_or_experiments():
    code = ("import sys, lfr_rs; print(' '.join(sorted(m for m in sys.modules if m.startswith('lfr_rs'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout.split()
    assert loaded and not [m for m in loaded if m.startswith(("lfr_rs.training", "lfr_rs.experiments", "lfr_rs.cli"))]

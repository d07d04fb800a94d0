"""Every import in voicelab/ points down a floor (or stays on its own), and nothing imports in a circle.

The floors (docs/architecture.md, "Floors"), lowest first; a module may import its own floor and
the floors below, never one above:

    0  config, errors, fileio, workspace, listfile (the .list format), devices, the package itself
    1  audio, text, data
    2  models, corpus (builds a corpus from audio + text), base (reads a shipped base's files)
    3  training
    4  synth, export, eval, pretrain (corpus -> training run -> a shipped base)
    5  ui, commands, cli, __main__

Imports are read with `ast` from the source, wherever they sit (module level, inside a function,
under TYPE_CHECKING): a lazy import is still a dependency. `importlib.import_module`,
`importlib.util.find_spec`, `__import__` (or any call, logging.getLogger aside) given a literal
voicelab module name count as imports too, and are refused outright: a plain import says the
same thing, and tools and readers can see it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "voicelab"

# The first name under voicelab/ (a subpackage or a top-level module) -> its floor.
FLOORS: dict[str, int] = {
    "": 0,  # voicelab/__init__.py (the version)
    "config": 0,
    "errors": 0,
    "fileio": 0,
    "workspace": 0,
    "listfile": 0,
    "devices": 0,  # resolve_device: audio features, training and synthesis all pick a device
    "audio": 1,
    "text": 1,
    "data": 1,
    "models": 2,
    "corpus": 2,
    "base": 2,
    "training": 3,
    "synth": 4,
    "export": 4,
    "eval": 4,
    "pretrain": 4,
    "ui": 5,
    "commands": 5,
    "cli": 5,
    "__main__": 5,
}
DYNAMIC = {"import_module", "find_spec", "__import__"}


@dataclass(frozen=True)
class Edge:
    src: str  # importing module, e.g. "voicelab.data.dataset"
    dst: str  # imported module (a submodule when `from pkg import submodule`)
    where: str  # "voicelab/data/dataset.py:35"
    dynamic: bool = False


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def unit(module: str) -> str:
    """voicelab.data.dataset -> "data"; voicelab.config -> "config"; voicelab -> ""."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _resolve(base: str, name: str | None, modules: dict[str, Path]) -> str:
    """`from base import name`: the submodule base.name if there is one, else base."""
    if name and f"{base}.{name}" in modules:
        return f"{base}.{name}"
    return base


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    rel = path.relative_to(PACKAGE.parent).as_posix()
    is_pkg = path.name == "__init__.py"
    edges: list[Edge] = []
    for node in ast.walk(tree):
        where = f"{rel}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "voicelab":
                    edges.append(Edge(module, a.name, where))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                pkg = module.split(".") if is_pkg else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != "voicelab":
                continue
            for a in node.names:
                edges.append(Edge(module, _resolve(base, a.name, modules), where))
        elif isinstance(node, ast.Call):
            f = node.func
            fname = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if fname == "getLogger" or not node.args:  # logger names look like modules
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                # importlib & co., or a home-made wrapper such as need("voicelab.synth", ...)
                if (fname in DYNAMIC and arg.value.split(".")[0] == "voicelab") or arg.value in modules:
                    edges.append(Edge(module, arg.value, where, dynamic=True))
    # an import of a name that is no module (a typo'd path) still belongs to its package
    for i, e in enumerate(edges):
        dst = e.dst
        while dst not in modules and "." in dst:
            dst = dst.rsplit(".", 1)[0]
        edges[i] = Edge(e.src, dst, e.where, e.dynamic)
    return edges


def _order(e: Edge) -> tuple[str, int]:
    path, line = e.where.rsplit(":", 1)
    return path, int(line)


def import_graph() -> list[Edge]:
    modules = all_modules()
    return [e for m, p in modules.items() for e in imports_of(m, p, modules)]


def cycles(nodes: set[str], succ: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node, or a node importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan; the graph is a few hundred nodes
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(succ.get(v, ())):
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
            if len(comp) > 1 or v in succ.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def test_every_part_of_the_package_has_a_floor():
    units = {unit(m) for m in all_modules()}
    missing = sorted(units - FLOORS.keys())
    assert not missing, (
        f"voicelab/{missing} has no floor: add it to FLOORS in tests/test_layers.py and to "
        "'Floors' in docs/architecture.md (the lowest floor whose modules it needs)"
    )


def test_no_import_points_up_a_floor():
    bad = []
    for e in sorted(import_graph(), key=_order):
        s, d = unit(e.src), unit(e.dst)
        if s in FLOORS and d in FLOORS and FLOORS[d] > FLOORS[s]:
            bad.append(f"{e.where}: {e.src} (floor {FLOORS[s]}) imports {e.dst} (floor {FLOORS[d]})")
    assert not bad, "imports that point up a floor:\n" + "\n".join(bad)


def test_no_hidden_imports():
    """importlib / find_spec / __import__ of a voicelab module: write a plain import."""
    bad = [f"{e.where}: {e.dst}" for e in sorted(import_graph(), key=_order) if e.dynamic]
    assert not bad, "imports hidden behind importlib:\n" + "\n".join(bad)


def test_no_module_imports_in_a_circle():
    edges = [e for e in import_graph() if e.src != e.dst]
    succ: dict[str, set[str]] = {}
    for e in edges:
        succ.setdefault(e.src, set()).add(e.dst)
    found = cycles(set(all_modules()), succ)
    assert not found, "modules that import each other (directly or round a loop):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_no_packages_import_in_a_circle():
    """audio -> data -> audio would pass the floor check (one floor) but ties the two together."""
    succ: dict[str, set[str]] = {}
    for e in import_graph():
        s, d = unit(e.src), unit(e.dst)
        if s != d:
            succ.setdefault(s, set()).add(d)
    found = cycles(set(FLOORS) | set(succ), succ)
    assert not found, "parts of voicelab/ that import each other:\n" + "\n".join(
        " <-> ".join(c or "voicelab" for c in comp) for comp in found
    )


def test_the_checker_sees_lazy_hidden_relative_and_circular_imports(tmp_path, monkeypatch):
    """The walker itself: a lazy upward import, a hidden one and a circle are all found."""
    pkg = tmp_path / "voicelab"
    (pkg / "data").mkdir(parents=True)
    (pkg / "training").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "__init__.py").write_text("")
    (pkg / "training" / "__init__.py").write_text("")
    (pkg / "data" / "a.py").write_text(
        "def f():\n    from voicelab.training import t\n    import importlib\n"
        "    importlib.import_module('voicelab.data.b')\n    need('voicelab.data.c', 'x')\n"
    )
    (pkg / "data" / "b.py").write_text("from . import c\n")
    (pkg / "data" / "c.py").write_text("from voicelab.data.b import x\n")
    (pkg / "training" / "t.py").write_text("from voicelab.data import a\n")
    monkeypatch.setitem(globals(), "PACKAGE", pkg)
    edges = {(e.src, e.dst, e.dynamic) for e in import_graph()}
    assert ("voicelab.data.a", "voicelab.training.t", False) in edges  # lazy, inside a function
    assert ("voicelab.data.a", "voicelab.data.b", True) in edges  # hidden
    assert ("voicelab.data.a", "voicelab.data.c", True) in edges  # hidden behind a helper
    assert ("voicelab.data.b", "voicelab.data.c", False) in edges  # relative
    succ: dict[str, set[str]] = {}
    for s, d, _ in edges:
        succ.setdefault(s, set()).add(d)
    assert ["voicelab.data.b", "voicelab.data.c"] in cycles(set(succ), succ)
    assert ["voicelab.data.a", "voicelab.training.t"] in cycles(set(succ), succ)

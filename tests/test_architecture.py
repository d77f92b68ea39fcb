"""The package's shape (DESIGN.md): no import cycles, no private names across packages,
and nn/ holding layers only."""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import gnnleaky

ROOT = Path(gnnleaky.__file__).parent
#: The one private module every package shares by design (every input check).
SHARED = {"gnnleaky._validation"}


def _modules() -> dict[str, Path]:
    out = {"gnnleaky": ROOT / "__init__.py"}
    for info in pkgutil.walk_packages([str(ROOT)], prefix="gnnleaky."):
        path = ROOT.joinpath(*info.name.split(".")[1:])
        out[info.name] = path / "__init__.py" if info.ispkg else path.with_suffix(".py")
    return out


MODULES = _modules()


def _package(name: str) -> str:
    return name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]


def _imports(name: str) -> list[tuple[str, str | None, int]]:
    """(module, imported attribute or None, line) for every gnnleaky import of ``name``."""
    tree = ast.parse(MODULES[name].read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [
                (a.name, None, node.lineno) for a in node.names if a.name.startswith("gnnleaky")
            ]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("gnnleaky"):
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    if sub in MODULES:  # `from pkg import submodule`
                        out.append((sub, None, node.lineno))
                    else:
                        out.append((node.module, a.name, node.lineno))
    return out


def test_no_import_cycle():
    graph = {m: {t for t, _, _ in _imports(m) if t in MODULES and t != m} for m in MODULES}
    # a package's __init__ re-exports its modules: only the edges into a package from
    # outside it, or between its modules, can close a cycle through it
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycle = [*stack[stack.index(t) :], t]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_no_private_name_is_imported_from_another_package():
    bad = []
    for m in MODULES:
        for target, attr, line in _imports(m):
            if target not in MODULES or _package(target) == _package(m):
                continue
            if target in SHARED and (attr is None or not attr.startswith("_")):
                continue
            private_module = any(p.startswith("_") for p in target.split(".")[1:])
            if private_module or (attr is not None and attr.startswith("_")):
                bad.append(f"{m}:{line} imports {target}{'.' + attr if attr else ''}")
    assert not bad, "\n".join(bad)


def test_nn_holds_layers_only():
    for name in MODULES:
        if name.startswith("gnnleaky.nn"):
            for target, _, _ in _imports(name):
                assert not target.startswith(
                    ("gnnleaky.engine", "gnnleaky.train", "gnnleaky.bench")
                ), f"{name} imports {target}: nn/ is what a PyG user imports, layers only"

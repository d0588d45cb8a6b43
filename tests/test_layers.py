"""The package's layers: each part imports only the layers below it, and no module
imports itself back through others.

Read from the source (``ast``), so a violation fails with the file, line and import
that break the rule, whether or not the import runs at module load. The layers, bottom
up (``docs/architecture.md``): ``errors``; ``protocol`` (sans-I/O); ``io`` and
``config``; ``files``; ``session``; ``client``; ``pool`` and ``local``; ``provider``,
``cli`` and ``mcp`` on top. Parts on one layer do not import each other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import attrs

import jupyter_interp

PACKAGE = Path(jupyter_interp.__file__).parent
ROOT = "jupyter_interp"
LAYERS: dict[str, int] = {
    "_version": 0,
    "errors": 0,
    "protocol": 1,
    "telemetry": 2,
    "io": 3,
    "config": 3,
    "notebook": 3,
    "files": 4,
    "session": 5,
    "client": 6,
    "pool": 7,
    "local": 7,
    "provider": 8,
    "cli": 9,
    "mcp": 8,
    "blocking": 8,
}


@attrs.frozen
class Import:
    source: Path
    line: int
    module: str  # the module importing
    target: str  # the module imported
    type_only: bool  # under ``if TYPE_CHECKING:``

    def __str__(self) -> str:
        where = self.source.relative_to(PACKAGE.parent)
        return f"{where}:{self.line} imports {self.target}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    return (PACKAGE / relative).with_suffix(".py").is_file() or (
        PACKAGE / relative / "__init__.py"
    ).is_file()


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports() -> Iterator[Import]:
    """Every import of a jupyter_interp module by a jupyter_interp module."""
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text(), str(path))
        type_only = _type_checking_lines(tree)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.append(submodule if _is_module(submodule) else base)
            for target in targets:
                if target == ROOT or target.startswith(ROOT + "."):
                    yield Import(path, node.lineno, module, target, node.lineno in type_only)


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the package root, the facade


def test_every_part_has_a_layer() -> None:
    parts = {part for path in PACKAGE.rglob("*.py") if (part := _layer(_module_name(path)))}
    assert parts <= set(LAYERS), f"give these a layer in LAYERS: {sorted(parts - set(LAYERS))}"


def test_each_layer_imports_only_layers_below() -> None:
    offending = []
    for imp in imports():
        own, other = _layer(imp.module), _layer(imp.target)
        if own is None or other is None or own == other:
            continue
        if LAYERS[other] >= LAYERS[own]:
            below = sorted(name for name, rank in LAYERS.items() if rank < LAYERS[own])
            offending.append(f"{imp}: {own} may import only {', '.join(below)}")
    assert offending == [], "\n".join(offending)


def test_no_import_circles_at_run_time() -> None:
    graph: dict[str, set[str]] = {}
    lines: dict[tuple[str, str], Import] = {}
    for imp in imports():
        if not imp.type_only and imp.target != imp.module:
            graph.setdefault(imp.module, set()).add(imp.target)
            lines.setdefault((imp.module, imp.target), imp)
    circles: list[str] = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            circle = [*path[path.index(module) :], module]
            circles.append(" -> ".join(str(lines[a, b]) for a, b in pairwise(circle)))
            return
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert circles == [], "\n".join(circles)

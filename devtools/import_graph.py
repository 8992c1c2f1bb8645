"""The project's import graph, read from the source with `ast` (nothing is imported).

    python -m devtools.import_graph           check: exit 1 on any violation below
    python -m devtools.import_graph --table   which top-level packages each one imports

Every import counts, module-level or inside a function (a late import only delays a cycle);
imports under `if TYPE_CHECKING:` are left out of the cycle check (they never run).

The check complements import-linter (`lint-imports`, contracts in pyproject.toml), which
sees packages only:
- no import cycle among the project's modules, at any depth, across packages too;
- nothing imports an entry-point module (scheduler.py, gateway.py, wsgi.py);
- the entry-point modules do not import `devtools`.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Not production code: never part of the graph.
EXCLUDED_DIRS = frozenset({"tests", "bench", "migrations", "var", "docs", "node_modules"})
DEVTOOLS = "devtools"

# Known cycles, left out of the check until they are fixed (then delete the line: a stale
# entry is reported). (importer pattern, imported): the imports that close each cycle.
# For example ("api.notifications.*", "api.notifications"): view modules importing `blp` back
# from the blueprint package whose __init__ imports them (fixed: api/*/blueprint.py).
KNOWN_CYCLE_IMPORTS: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    path: Path
    line: int
    text: str
    type_checking: bool
    root: Path

    def where(self) -> str:
        return f"{self.path.relative_to(self.root)}:{self.line}"


@dataclass
class Graph:
    modules: dict[str, Path] = field(default_factory=dict)  # module name -> file
    imports: list[Import] = field(default_factory=list)
    entry_points: set[str] = field(default_factory=set)  # the top-level .py modules

    def edges(self, *, runtime_only: bool = False) -> dict[str, dict[str, list[Import]]]:
        out: dict[str, dict[str, list[Import]]] = {name: {} for name in self.modules}
        for imp in self.imports:
            if runtime_only and imp.type_checking:
                continue
            out[imp.importer].setdefault(imp.imported, []).append(imp)
        return out


def top_level(module: str) -> str:
    return module.split(".", 1)[0]


def unit_name(module: str, graph: Graph) -> str:
    """What the table groups by: a top-level package, or `name.py` for a top-level module."""
    top = top_level(module)
    return f"{top}.py" if top in graph.entry_points else top


def discover(root: Path = ROOT) -> Graph:
    graph = Graph()
    for path in sorted(root.glob("*.py")):
        graph.modules[path.stem] = path
        graph.entry_points.add(path.stem)
    for init in sorted(root.glob("*/__init__.py")):
        package = init.parent
        if package.name in EXCLUDED_DIRS or package.name.startswith("."):
            continue
        for path in sorted(package.rglob("*.py")):
            relative = path.relative_to(root).with_suffix("")
            if not (path.parent / "__init__.py").exists():
                continue  # a stray script in a plain folder, not importable as a module
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            graph.modules[".".join(parts)] = path
    for name, path in graph.modules.items():
        graph.imports.extend(_imports_of(name, path, graph.modules, root))
    return graph


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, type_checking: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node, with whether it sits under `if TYPE_CHECKING:` (its body, not its else)."""
    yield node, type_checking
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        for child in node.body:
            yield from _walk(child, True)
        for child in node.orelse:
            yield from _walk(child, type_checking)
        return
    for child in ast.iter_child_nodes(node):
        yield from _walk(child, type_checking)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module that `import name` binds, or None if it is not ours."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _imports_of(
    module: str, path: Path, modules: dict[str, Path], root: Path
) -> Iterable[Import]:
    source = path.read_text()
    tree = ast.parse(source, filename=str(path))
    lines = source.splitlines()
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    for node, type_checking in _walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".") if package else []
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            # `from pkg import mod` imports pkg.mod when that is a module; else a name of pkg.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        line = getattr(node, "lineno", 0)
        text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        for target in dict.fromkeys(targets):
            resolved = _resolve(target, modules)
            if resolved is None or resolved == module:
                continue
            yield Import(module, resolved, path, line, text, type_checking, root)


# Cycles ------------------------------------------------------------------------------------


def strongly_connected(edges: dict[str, dict[str, list[Import]]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of two or more modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def shortest_cycle(
    start: str, members: set[str], edges: dict[str, dict[str, list[Import]]]
) -> list[str]:
    """The shortest path start -> ... -> start inside one component (breadth first)."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(edges[node]):
            if child not in members:
                continue
            if child == start:  # back home: node, previous[node], ..., start
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    return [start]


def without_known_cycles(
    edges: dict[str, dict[str, list[Import]]],
) -> tuple[dict[str, dict[str, list[Import]]], list[str]]:
    """The edges less the known cycle-closing imports that do close a cycle, and notes."""
    component_of = {
        member: number
        for number, component in enumerate(strongly_connected(edges))
        for member in component
    }
    kept: dict[str, dict[str, list[Import]]] = {}
    used: set[tuple[str, str]] = set()
    for importer, targets in edges.items():
        kept[importer] = {}
        for imported, imports in targets.items():
            known = [
                (pattern, target)
                for pattern, target in KNOWN_CYCLE_IMPORTS
                if fnmatch.fnmatchcase(importer, pattern) and imported == target
            ]
            in_one_cycle = component_of.get(importer, -1) == component_of.get(imported, -2)
            if known and in_one_cycle:
                used.update(known)
                continue
            kept[importer][imported] = imports
    notes = [
        f"known cycle, to be fixed: {pattern} -> {target}"
        for pattern, target in KNOWN_CYCLE_IMPORTS
        if (pattern, target) in used
    ] + [
        f"stale KNOWN_CYCLE_IMPORTS entry, delete it: {pattern} -> {target}"
        for pattern, target in KNOWN_CYCLE_IMPORTS
        if (pattern, target) not in used
    ]
    return kept, notes


def cycle_problems(graph: Graph, notes: list[str] | None = None) -> list[str]:
    edges, known_notes = without_known_cycles(graph.edges(runtime_only=True))
    if notes is not None:
        notes.extend(known_notes)
    problems = []
    for component in strongly_connected(edges):
        members = set(component)
        cycle = shortest_cycle(component[0], members, edges)
        lines = [f"import cycle among {len(component)} modules: {', '.join(component)}"]
        lines.append("  for example " + " -> ".join(cycle) + ":")
        for importer, imported in pairwise(cycle):
            for imp in edges[importer][imported]:
                lines.append(f"    {imp.where()}: {imp.text}")
        problems.append("\n".join(lines))
    return problems


def entry_point_problems(graph: Graph) -> list[str]:
    problems = []
    for imp in graph.imports:
        if imp.imported in graph.entry_points:
            problems.append(
                f"{imp.where()}: {imp.text}  ({imp.importer} imports the entry point "
                f"{imp.imported}.py; entry points are imported by nobody)"
            )
        if imp.importer in graph.entry_points and top_level(imp.imported) == DEVTOOLS:
            problems.append(
                f"{imp.where()}: {imp.text}  (the entry point {imp.importer}.py imports "
                f"{DEVTOOLS}, development tooling)"
            )
    return problems


# The table ---------------------------------------------------------------------------------


def unit_dependencies(graph: Graph) -> dict[str, set[str]]:
    units: dict[str, set[str]] = {unit_name(m, graph): set() for m in graph.modules}
    for imp in graph.imports:
        importer, imported = unit_name(imp.importer, graph), unit_name(imp.imported, graph)
        if importer != imported:
            units[importer].add(imported)
    return units


def table(graph: Graph) -> str:
    deps = unit_dependencies(graph)
    importers: dict[str, set[str]] = {unit: set() for unit in deps}
    for unit, imported in deps.items():
        for other in imported:
            importers[other].add(unit)
    rows = [
        "| package | imports | imported by |",
        "| --- | --- | --- |",
    ]
    for unit in sorted(deps, key=lambda u: (u.endswith(".py"), u)):
        imports = ", ".join(sorted(deps[unit])) or "-"
        imported_by = ", ".join(sorted(importers[unit])) or "-"
        rows.append(f"| {unit} | {imports} | {imported_by} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="store_true", help="print the package table and exit")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: ours)")
    arguments = parser.parse_args(argv)
    graph = discover(arguments.root.resolve())
    if arguments.table:
        print(table(graph))
        return 0
    notes: list[str] = []
    problems = cycle_problems(graph, notes) + entry_point_problems(graph)
    for line in notes + problems:
        print(line)
    if problems:
        print(f"import graph: {len(problems)} problem(s) in {len(graph.modules)} modules")
        return 1
    known = sum(note.startswith("known cycle") for note in notes)
    cycles = f"no cycle but the {known} known above" if known else "no cycle"
    print(f"import graph: {len(graph.modules)} modules, {cycles}, entry points kept apart")
    return 0


if __name__ == "__main__":
    sys.exit(main())

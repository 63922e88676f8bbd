"""The import rules of the layout, checked with ``ast``.

* ``strategies`` is a library: it never imports Django, Celery, ``webapp`` or ``workers``.
* The modules of ``webapp`` and ``workers`` (one graph) import each other without a cycle,
  counting every import: module level, inside functions, under ``if TYPE_CHECKING:``.
* ``webapp`` never imports ``workers``: it enqueues tasks by name through its own Celery
  app (``webapp.broker``) and lists models from ``webapp.model_catalogue``; the
  dependency runs one way, ``workers`` -> ``webapp``.

The checker is a handful of functions taking a root directory, so the same code runs on
the real tree and on small synthetic trees that prove it can fail.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STRATEGIES = ROOT / "strategies"
FORBIDDEN = frozenset({"django", "celery", "webapp", "workers"})
APP_PACKAGES = ("webapp", "workers")
SEAM: tuple[str, ...] = ()

#: module name -> {imported module name: line of the first import of it}
Graph = dict[str, dict[str, int]]


def _imported_roots(tree: ast.AST) -> set[str]:
    """Return the top-level package of every absolute import in ``tree``."""
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


# --- The checker ----------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """One name imported by one module: ``name`` is absolute (``a.b.c`` for
    ``from a.b import c``, whether ``c`` is a submodule or an attribute)."""

    module: str
    line: int
    name: str


def find_modules(root: Path, packages: Iterable[str] = APP_PACKAGES) -> dict[str, Path]:
    """Every module under ``root/<package>``: dotted name -> path relative to ``root``."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = relative
    return modules


def _package_of(module: str, path: Path) -> str:
    """The package that relative imports in ``module`` start from."""
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imports_of(root: Path, module: str, path: Path) -> list[Import]:
    """Every import statement anywhere in the file, as absolute imported names."""
    tree = ast.parse((root / path).read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(Import(module, node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(module, path).split(".")
                base = base[: len(base) - (node.level - 1)]
                if node.module:
                    base.append(node.module)
                origin = ".".join(part for part in base if part)
            else:
                origin = node.module or ""
            for alias in node.names:
                name = origin if alias.name == "*" else f"{origin}.{alias.name}"
                found.append(Import(module, node.lineno, name))
    return sorted(found, key=lambda item: (item.line, item.name))


def resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    """The module an imported name lands in: itself, else its longest known prefix
    (``a.b.c`` -> ``a.b`` when ``c`` is an attribute of ``a.b``); None outside the graph."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph(root: Path, packages: Iterable[str] = APP_PACKAGES) -> Graph:
    """The import graph of the modules under ``root/<package>`` (edges stay inside it)."""
    modules = find_modules(root, packages)
    graph: Graph = {module: {} for module in modules}
    for module, path in modules.items():
        for item in imports_of(root, module, path):
            target = resolve(item.name, modules)
            if target is not None and target != module:
                graph[module].setdefault(target, item.line)
    return graph


def _strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's strongly connected components, in a deterministic order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, {})):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def _shortest_cycle(graph: Graph, start: str, allowed: set[str]) -> list[str]:
    """The shortest path ``start -> ... -> start`` inside ``allowed`` (breadth first)."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for target in sorted(graph[node]):
                if target not in allowed:
                    continue
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if target not in parents:
                    parents[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"{start} is in a component but on no cycle")


def find_cycles(graph: Graph) -> list[list[str]]:
    """Import cycles as module chains ending where they start.

    Each strongly connected component yields the shortest cycle through its first
    module, then through each member no cycle reported so far passes through.
    """
    cycles: list[list[str]] = []
    for component in _strongly_connected(graph):
        if len(component) < 2:
            continue
        members = set(component)
        covered: set[str] = set()
        for module in component:
            if module not in covered:
                cycle = _shortest_cycle(graph, module, members)
                covered.update(cycle)
                cycles.append(cycle)
    return cycles


def format_cycle(cycle: list[str], graph: Graph, modules: Mapping[str, Path]) -> str:
    """``a.py:3 -> b.py:7 -> a.py``: each file with the line of its import of the next."""
    steps = [
        f"{modules[module].as_posix()}:{graph[module][following]}"
        for module, following in pairwise(cycle)
    ]
    return " -> ".join([*steps, modules[cycle[-1]].as_posix()])


def cycle_report(root: Path, packages: Iterable[str] = APP_PACKAGES) -> list[str]:
    """Every import cycle under ``root``, readable."""
    modules = find_modules(root, packages)
    graph = import_graph(root, packages)
    return [format_cycle(cycle, graph, modules) for cycle in find_cycles(graph)]


def seam_violations(root: Path, allowed: Iterable[str] = SEAM) -> list[str]:
    """Imports of ``workers`` by ``webapp`` modules outside the allowed seam modules."""
    allowed = tuple(allowed)
    modules = find_modules(root, ("webapp",))
    violations: list[str] = []
    for module, path in modules.items():
        for item in imports_of(root, module, path):
            if item.name != "workers" and not item.name.startswith("workers."):
                continue
            if any(item.name == seam or item.name.startswith(f"{seam}.") for seam in allowed):
                continue
            violations.append(f"{path.as_posix()}:{item.line}: imports {item.name}")
    return violations


# --- strategies is a library ------------------------------------------------------------


def test_it_finds_the_strategies_modules() -> None:
    assert len(list(STRATEGIES.rglob("*.py"))) > 5


def test_it_keeps_django_celery_webapp_and_workers_out_of_strategies() -> None:
    offenders = []
    for path in sorted(STRATEGIES.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        bad = _imported_roots(tree) & FORBIDDEN
        if bad:
            offenders.append(f"{path.relative_to(STRATEGIES.parent)}: {', '.join(sorted(bad))}")
    assert not offenders, "strategies/ must not import the app:\n" + "\n".join(offenders)


def test_it_detects_a_forbidden_import() -> None:
    tree = ast.parse("import os\nfrom django.db import models\nimport workers.tasks as t\n")
    assert _imported_roots(tree) & FORBIDDEN == {"django", "workers"}


# --- The real tree ----------------------------------------------------------------------


def test_it_finds_the_app_modules() -> None:
    modules = find_modules(ROOT)

    assert {"webapp", "webapp.settings", "workers", "workers.tasks"} <= set(modules)
    assert modules["workers"] == Path("workers/__init__.py")


def test_it_has_no_import_cycle_between_webapp_and_workers() -> None:
    cycles = cycle_report(ROOT)

    assert not cycles, "import cycles (file:line of each import):\n" + "\n".join(cycles)


def test_it_never_imports_workers_from_webapp() -> None:
    violations = seam_violations(ROOT)

    assert not violations, "webapp must not import workers:\n" + "\n".join(violations)


def test_it_lists_the_models_without_importing_torch() -> None:
    code = (
        "import json, sys\n"
        "import webapp.model_catalogue as catalogue\n"
        "names = [name for name, _ in catalogue.model_choices(None)]\n"
        "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
        "print(json.dumps({'names': names, 'heavy': heavy}))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings"}

    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["names"], "the catalogue lists no model"
    assert result["heavy"] == []


# --- Synthetic trees: the checker can fail -----------------------------------------------


def _tree(root: Path, files: Mapping[str, str]) -> Path:
    """Write ``files`` (path -> source) under ``root``, adding missing ``__init__.py``."""
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
        for parent in Path(relative).parents:
            if parent != Path(".") and not (root / parent / "__init__.py").exists():
                (root / parent / "__init__.py").write_text("", encoding="utf-8")
    return root


def test_it_reports_a_cycle_through_function_level_imports(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "webapp/a.py": "import os\n\n\ndef go():\n    from workers.b import run\n    run()\n",
            "workers/b.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
            "    import webapp.a\n",
        },
    )

    assert cycle_report(root) == ["webapp/a.py:5 -> workers/b.py:4 -> webapp/a.py"]


def test_it_reports_a_cycle_through_relative_imports(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "workers/runtime/engine.py": "from . import sampler\n",
            "workers/runtime/sampler.py": "try:\n    from ..tasks import x\nexcept ImportError:\n"
            "    x = None\n",
            "workers/tasks.py": "from .runtime.engine import generate\n",
        },
    )

    assert cycle_report(root) == [
        "workers/runtime/engine.py:1 -> workers/runtime/sampler.py:2 -> workers/tasks.py:1"
        " -> workers/runtime/engine.py"
    ]


def test_it_reports_a_cycle_through_a_submodule_imported_from_its_package(
    tmp_path: Path,
) -> None:
    root = _tree(
        tmp_path,
        {
            "webapp/experiments/services.py": "from webapp.experiments import views\n",
            "webapp/experiments/views.py": "from webapp.experiments.services import submit\n",
        },
    )

    assert cycle_report(root) == [
        "webapp/experiments/services.py:1 -> webapp/experiments/views.py:1"
        " -> webapp/experiments/services.py"
    ]


def test_it_counts_a_package_import_as_an_edge_to_its_init(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "workers/__init__.py": "from workers.celery import app\n",
            "workers/celery.py": "import workers.tasks\n",
            "workers/tasks.py": "from workers import celery_app\n",
        },
    )

    assert cycle_report(root) == [
        "workers/__init__.py:1 -> workers/celery.py:1 -> workers/tasks.py:1 -> workers/__init__.py"
    ]


def test_it_reports_each_module_of_a_tangle(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "workers/a.py": "import workers.b\nimport workers.c\n",
            "workers/b.py": "import workers.a\n",
            "workers/c.py": "import workers.a\n",
        },
    )

    assert cycle_report(root) == [
        "workers/a.py:1 -> workers/b.py:1 -> workers/a.py",
        "workers/c.py:1 -> workers/a.py:2 -> workers/c.py",
    ]


def test_it_reports_no_cycle_in_a_layered_tree(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "webapp/experiments/services.py": "from webapp.broker import app\n"
            "from webapp.model_catalogue import model_choices\n",
            "webapp/experiments/views.py": "from . import services\nfrom .services import go\n",
            "webapp/broker.py": "import os\n",
            "webapp/model_catalogue.py": "from pathlib import Path\n",
            "workers/celery.py": "from webapp.broker import app\n",
            "workers/tasks.py": "from webapp.experiments import services\n"
            "from workers.runtime import engine\n",
            "workers/runtime/engine.py": "def f():\n    from webapp.model_catalogue import x\n",
        },
    )

    assert cycle_report(root) == []
    assert seam_violations(root) == []


@pytest.mark.parametrize(
    ("source", "line", "name"),
    [
        ("import os\n\n\ndef go():\n    from workers.tasks import x\n", 5, "workers.tasks.x"),
        ("import workers\n", 1, "workers"),
        ("from workers import tasks\n", 1, "workers.tasks"),
        ("import workers.runtime.models as m\n", 1, "workers.runtime.models"),
        ("if True:\n    from workers.code_runs import run\n", 2, "workers.code_runs.run"),
        ("from workers import celery_app\n", 1, "workers.celery_app"),
    ],
)
def test_it_flags_a_webapp_import_outside_the_seam(
    tmp_path: Path, source: str, line: int, name: str
) -> None:
    root = _tree(tmp_path, {"webapp/experiments/services.py": source, "workers/tasks.py": ""})

    assert seam_violations(root) == [f"webapp/experiments/services.py:{line}: imports {name}"]


def test_it_allows_named_seam_modules(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "webapp/a.py": "import workers.celery\nfrom workers.celery import app\n",
            "workers/tasks.py": "from webapp import a\nfrom workers.runtime import models\n",
        },
    )

    assert seam_violations(root, allowed=("workers.celery",)) == []
    assert seam_violations(root) == ["webapp/a.py:1: imports workers.celery",
                                     "webapp/a.py:2: imports workers.celery.app"]

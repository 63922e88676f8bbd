"""The library keeps to its side of the import direction: strategies never imports the app."""

from __future__ import annotations

import ast
from pathlib import Path

STRATEGIES = Path(__file__).resolve().parent.parent / "strategies"
FORBIDDEN = frozenset({"django", "celery", "webapp", "workers"})


def _imported_roots(tree: ast.AST) -> set[str]:
    """Return the top-level package of every absolute import in ``tree``."""
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


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

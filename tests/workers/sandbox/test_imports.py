"""The sandbox imports no app code, and what runs inside a runner imports the stdlib only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SANDBOX = Path(__file__).resolve().parents[3] / "workers" / "sandbox"
FORBIDDEN = {"django", "celery", "webapp"}
#: Loaded by path inside the runner's bare ``python -I``: no package, no third party.
RUNNER_SIDE = ("_server.py", "_confine.py", "_harness.py", "_seccomp.py", "_wire.py")


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            roots.add(".")
    return roots


def test_the_sandbox_never_imports_the_app() -> None:
    files = sorted(SANDBOX.glob("*.py"))
    assert len(files) >= 8
    offenders = {p.name: _imported_roots(p) & FORBIDDEN for p in files}
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_runner_side_modules_use_the_standard_library_only() -> None:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for name in RUNNER_SIDE:
        assert _imported_roots(SANDBOX / name) <= stdlib, name

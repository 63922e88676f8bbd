"""CodeT's test-generation prompt: the model writes assertions for the function.

The pool of generated tests is sampled like any other pool; ``strategies.verify.code.
extract_assertions`` turns each sample into at most five assertions, and the sandbox
runs every solution against every assertion to fill the pass matrix of CodeT and B4
(ALGORITHMS §10).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from strategies.prompting.scheme import Scheme
from strategies.types import Problem

__all__ = ["SCHEME", "TestPromptConfig", "render_test_prompt"]


@dataclass(frozen=True, kw_only=True)
class TestPromptConfig:
    """The test-generation prompt has no settings (CodeT's fixed instruction)."""

    __test__ = False  # not a pytest class


def render_test_prompt(problem: Problem, config: TestPromptConfig | None = None) -> str:
    """CodeT's test-generation prompt: the problem, a placeholder body, and an opened
    assertion the model continues (``assert entry_point(``).

    Chat models see it as the user's message and usually answer with assertion lines;
    completion models continue the open assertion. ``extract_assertions`` reads both.
    """
    del config
    entry_point = str(problem.metadata.get("entry_point") or _last_def(problem.prompt))
    return (f"{problem.prompt.rstrip()}\n    pass\n\n"
            f"# check the correctness of {entry_point}\nassert {entry_point}(")


def _last_def(prompt: str) -> str:
    names = re.findall(r"^(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(", prompt, re.MULTILINE)
    return names[-1] if names else "f"


# Not offered as a row's scheme: test pools are made for CodeT and B4 strategies.
SCHEME = Scheme(
    name="generated_tests",
    description="CodeT's test prompt: the model continues an assertion on the function.",
    config_class=TestPromptConfig,
    function=render_test_prompt,
    single_call=True,
    stops="tests",
    selectable=False,
)

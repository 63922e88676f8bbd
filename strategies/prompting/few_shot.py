"""Few-shot prompting: show worked examples (question, worked answer) before the problem."""

from __future__ import annotations

from dataclasses import dataclass

from strategies.prompting.scheme import Scheme
from strategies.types import Problem

__all__ = ["SCHEME", "ARITHMETIC_EXAMPLES", "FewShotConfig", "render_few_shot"]

#: Worked arithmetic examples in the answer format the built-in verifier reads.
ARITHMETIC_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("What is 23 + 48?", "23 + 48 = 71. The answer is 71."),
    ("What is 91 - 37?", "91 - 37 = 54. The answer is 54."),
    ("What is 12 * 7?", "12 * 7 = 84. The answer is 84."),
    ("What is (4 + 9) * 3?", "4 + 9 = 13, and 13 * 3 = 39. The answer is 39."),
    ("What is 6 * 8 - 15?", "6 * 8 = 48, and 48 - 15 = 33. The answer is 33."),
    (
        "Tom has 15 apples and gives away 6. How many apples does he have left?",
        "He has 15 - 6 = 9 apples left. The answer is 9.",
    ),
)


@dataclass(frozen=True, kw_only=True)
class FewShotConfig:
    """Worked examples as (question, answer) pairs; the first ``k`` of them are shown."""

    examples: tuple[tuple[str, str], ...] = ARITHMETIC_EXAMPLES
    k: int = 3
    question_label: str = "Question"
    answer_label: str = "Answer"

    def __post_init__(self) -> None:
        if not isinstance(self.examples, tuple) or not all(
            isinstance(pair, tuple)
            and len(pair) == 2
            and all(isinstance(part, str) and part.strip() for part in pair)
            for pair in self.examples
        ):
            raise ValueError("examples must be a tuple of (question, answer) non-empty strings")
        if isinstance(self.k, bool) or not isinstance(self.k, int):
            raise ValueError(f"k must be an integer, got {self.k!r}")
        if not 0 <= self.k <= len(self.examples):
            raise ValueError(f"k must be between 0 and {len(self.examples)}, got {self.k}")
        for name in ("question_label", "answer_label"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be a non-empty string, got {value!r}")


def render_few_shot(problem: Problem, config: FewShotConfig | None = None) -> str:
    """Return ``k`` worked examples followed by the problem, with an open answer slot.

    >>> config = FewShotConfig(examples=(("1 + 1?", "The answer is 2."),), k=1)
    >>> print(render_few_shot(Problem(prompt="2 + 2?", answer="4"), config))
    Question: 1 + 1?
    Answer: The answer is 2.
    <BLANKLINE>
    Question: 2 + 2?
    Answer:
    """
    config = config or FewShotConfig()
    q, a = config.question_label, config.answer_label
    shots = [
        f"{q}: {question.strip()}\n{a}: {answer.strip()}"
        for question, answer in config.examples[: config.k]
    ]
    shots.append(f"{q}: {problem.prompt.strip()}\n{a}:")
    return "\n\n".join(shots)


SCHEME = Scheme(
    name="few_shot",
    description="Show k worked examples before the problem.",
    config_class=FewShotConfig,
    function=render_few_shot,
    single_call=True,
)

r"""Find the final answer in a model's free-text output (ALGORITHMS §17, extraction).

The final-answer markers are GSM8K's ``#### X`` (read to the end of its line, never
past it), "The answer is X" / "Final Answer: X" / "Answer: X", and ``\boxed{X}`` (also
``\fbox``, ``\boxed 5``). When several appear, the **last one in the text wins**: a
model that corrects itself ends with its final answer. A marker whose value is prose
("the answer is consistent with ...") is skipped. A new question the model starts after
its answer ("Question: ...") is cut off first. Only when no marker exists is the last
number taken, in any of its written forms (``-3``, ``1,000``, ``3/8``, ``25%``,
``-$20``, ``2.5e3``), or the point, matrix or inline math it sits in; a number after
"not" ("27, not 72") is passed over.
"""

from __future__ import annotations

import re

__all__ = ["extract_answer", "last_boxed"]

_BOXED = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_PHRASE = re.compile(
    r"(?:\bfinal\s+answer|\b(?<![\w-])answers?)"
    r"(?:\s+to\s+(?:the|this|our|your)\s+(?:question|problem)(?:\s+\w+){0,4}?)?"
    r"\s*(?:\*\*|__)?\s*(?:\bis\b|\bare\b|:|=|\bwould\s+be\b|\bwill\s+be\b|\bshould\s+be\b)"
    r"\s*(?:\*\*|__)?\s*:?[ \t]*",
    re.IGNORECASE,
)
_GSM8K = re.compile(r"####[ \t]*([^\n]*)")
_NEW_QUESTION = re.compile(
    r"\n[ \t]*(?:#+[ \t]*)?(?:\*\*)?(?:Question|Problem|Q|Human|User)[ \t]*\d*[ \t]*(?:\*\*)?[:.]",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"(?<![\w.\\^_])(?P<number>"
    r"(?:[-+]\s?)?(?:\\\$|\$|€|£|¥|₹)?\s?-?"
    r"(?:\d+ \d+/\d+(?![\d/])|\d{1,3}(?:(?:,|\{,\}|\\,)\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s?/\s?\d+(?:\.\d+)?|[eE][-+]?\d+)?"
    r"(?:\s?\\?%|\s?percent\b)?)"
    r"(?![\d])"
)
_NEGATED = re.compile(
    r"(?:\bnot|n't|\binstead\s+of|\brather\s+than|\bnor|\bexcept)\s*(?:\w+\s+){0,2}$",
    re.IGNORECASE,
)
_MATH_SPAN = re.compile(
    r"\$\$(?P<a>.+?)\$\$|\\\[(?P<b>.+?)\\\]|(?<![\\\d])\$(?P<c>[^$\n]+?)\$|\\\((?P<d>.+?)\\\)",
    re.DOTALL,
)
_MATRIX_ENV = re.compile(r"\\begin\{([pbvBV]?matrix)\}.*?\\end\{\1\}", re.DOTALL)
#: After a leading number or bracket: the answer goes on (an operator, a command, a
#: repeating decimal, a variable), so it is more than that number.
_CONTINUES = re.compile(r"\s*(?:[-+*/^×·!<>=_{]|\\[A-Za-z]|\.\S|[a-z]\b|\w*\\)")
# fmt: off
_STOP_WORDS = frozenset({
    "the", "a", "an", "that", "this", "these", "those", "to", "not", "in", "of", "because",
    "given", "as", "which", "so", "we", "it", "is", "be", "simply", "clearly", "obtained",
    "found", "calculated", "shown", "above", "below", "correct", "incorrect", "consistent",
    "indeed", "right", "wrong", "following", "same", "different",
})
# fmt: on
_SHORT_WORDS = 3  # "yes", "Monday", "(C)", "not possible": a short word answer is an answer
_NUMBER_WORD = re.compile(
    r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|"
    r"fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|"
    r"sixty|seventy|eighty|ninety|hundred|thousand|million|billion|and|a|half|halves|"
    r"third|thirds|quarter|quarters|fourth|fourths|fifth|fifths|minus|negative)",
    re.IGNORECASE,
)


def last_boxed(text: str) -> str | None:
    r"""Return the contents of the last ``\boxed{...}`` / ``\fbox{...}`` / ``\boxed x``.

    Braces are matched by depth; an unbalanced box gives ``None``.

    >>> last_boxed(r"so \boxed{\frac{1}{2}} and")
    '\\frac{1}{2}'
    >>> last_boxed(r"$\boxed 5$")
    '5'
    """
    starts = [m.end() for m in _BOXED.finditer(text)]
    return _boxed_at(text, starts[-1]) if starts else None


def _boxed_at(text: str, after: int) -> str | None:
    """The contents of a box whose command ends at ``after``."""
    rest = text[after:]
    if rest[:1].isspace():
        match = re.match(r"\s+([^\s${}]+)", rest)
        if match is not None and not rest.lstrip().startswith("{"):
            return match.group(1)
    open_at = rest.find("{")
    if open_at < 0 or rest[:open_at].strip():
        return None
    end = _matching_brace(rest, open_at)
    return None if end is None else rest[open_at + 1 : end]


def _matching_brace(text: str, open_at: int) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``open_at`` (``\\{`` and ``\\}`` count too)."""
    depth = 0
    for i in range(open_at, len(text)):
        char = text[i]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _clean_number(text: str) -> str:
    r"""``-$1,000.`` -> ``-1000``; ``\$5`` -> ``5``; ``25 %`` -> ``25%``."""
    text = text.replace("\\$", "").replace("$", "").replace("{,}", "").replace("\\,", "")
    text = text.replace(",", "")
    mixed = re.fullmatch(r"(-?)(\d+) (\d+/\d+)", text.strip())
    if mixed is not None:  # "3 1/2": a mixed number keeps its space
        return f"{mixed.group(1)}{mixed.group(2)} {mixed.group(3)}"
    for sign in "€£¥₹":
        text = text.replace(sign, "")
    text = re.sub(r"\s*\\?%|\s*percent\b", "%", text).replace(" ", "")
    if text.startswith("+"):
        text = text[1:]
    if text.startswith("--"):
        text = text[2:]
    return text.rstrip(".")


def _strip_delimiters(text: str) -> str:
    r"""Trim markdown, quotes, math delimiters (``$``, ``\(..\)``, ``\[..\]``), end punctuation."""
    previous = None
    while previous != text:
        previous = text
        text = text.strip().strip("*_`\"'").strip()
        text = re.sub(r"^\\[(\[]|\\[)\]]$", "", text).strip()
        if text.startswith("$") or text.endswith("$"):
            text = text.strip("$").strip()
        if re.search(r"\d(?:\.\.\.|\\[lc]?dots)$", text):
            break  # "0.333...": a repeating decimal
        text = text.rstrip(".,;:?").strip()  # not "!": "5!" is a factorial
    return text


def _sentence(text: str) -> str:
    """The text up to the end of its sentence or line, not cutting inside math or brackets."""
    in_math, depth = False, 0
    i = 0
    while i < len(text):
        if text.startswith("\\(", i) or text.startswith("\\[", i):
            in_math, i = True, i + 2
            continue
        if text.startswith("\\)", i) or text.startswith("\\]", i):
            in_math, i = False, i + 2
            continue
        char = text[i]
        if char == "$" and (i == 0 or text[i - 1] != "\\"):
            in_math = not in_math
        elif char in "({[":
            depth += 1
        elif char in ")}]":
            depth = max(depth - 1, 0)
        elif char == "\n" and not in_math:
            return text[:i]
        elif char == "." and i > 0 and text[i - 1].isdigit() and text.startswith("...", i):
            i += 3  # "0.333...": the dots belong to the number
            continue
        elif char in ".!?" and not in_math and depth == 0:
            after = text[i + 1 : i + 2]
            if not after or after.isspace() or after in "*)":
                return text[:i]
        i += 1
    return text


def _is_name(text: str) -> bool:
    """A short name left of ``=``: ``x``, ``a_1``, ``\\theta``, ``f(x)``, ``width``."""
    from strategies.verify.structure import is_name

    return is_name(text.strip().strip("$").replace(" ", ""))


def _has_terms(text: str) -> bool:
    """True when ``text`` is a sum or difference at its top level: ``x^2 + y^2``, not ``A^2``."""
    from strategies.verify.structure import split_top_level

    parts = split_top_level(text.strip().lstrip("+-"), re.compile(r"[+-]"))
    return parts is None or len(parts) > 1


def _after_number(number: re.Match[str], text: str) -> str:
    """The answer a leading number starts: the number, or the list of numbers it opens."""
    rest = text[number.end() :]
    items = [_clean_number(number.group("number"))]
    while True:
        glue = re.match(r"\s*(?:,\s*(?:and|or)?|and|or|&)\s*", rest)
        if glue is None:
            break
        following = _NUMBER.match(rest, glue.end())
        if following is None:
            break
        tail = rest[following.end() :]
        is_prose = re.match(r"\s*(?:[a-zA-Z]{2,}|\()", tail) and not re.match(
            r"\s*(?:and|or)\b", tail
        )
        if is_prose and not re.match(r"\s*(?:[a-zA-Z]+\s*)?(?:[.,;]|$)", tail):
            break
        items.append(_clean_number(following.group("number")))
        rest = tail
    return ", ".join(items)


def _answer_value(phrase: str) -> str | None:
    """Read the answer a marker introduces (the text after it, up to the end of its line)."""
    boxed = last_boxed(phrase)
    if boxed is not None:
        return _strip_delimiters(boxed) or None
    phrase = _strip_delimiters(_sentence(phrase.replace("\\$", "").lstrip(" \t:")))
    if not phrase:
        return None
    span = re.fullmatch(r"\\\((.*)\\\)|\\\[(.*)\\\]", phrase, re.DOTALL)
    if span is not None:
        phrase = (span.group(1) or span.group(2) or "").strip()
    phrase = phrase.replace("$", "").strip() if "$" in phrase else phrase
    close = _bracket_end(phrase) if phrase.startswith(("(", "[")) else None
    if close is not None and not _CONTINUES.match(phrase, close + 1):
        return phrase[: close + 1]  # "(3, 4) is the vertex", but not "(x+1)^2"
    if phrase.count("=") >= 2 and re.search(r",|\band\b", phrase):
        return phrase  # a system: "a = 4, b = 5"
    if "=" in phrase and not re.search(r"[<>]=|\\[lg]eq?", phrase):
        lhs, rhs = phrase.split("=", 1)
        if _is_name(lhs):
            value = _answer_value(rhs)
            return None if value is None else f"{lhs.strip()} = {value}"
        if re.search(r"[A-Za-z]", re.sub(r"\\[A-Za-z]+", "", lhs)) and _has_terms(lhs):
            return phrase  # an equation in unknowns: "x^2 + y^2 = 25"
        return _answer_value(phrase.rsplit("=", 1)[1])  # "3 \times 4 = 12", "A^2 = ..."
    number = _NUMBER.match(phrase)
    if number is not None and number.start() == 0 and not _CONTINUES.match(phrase, number.end()):
        return _after_number(number, phrase)
    if any(char.isdigit() for char in phrase) or "\\" in phrase:
        return phrase
    words = phrase.replace("**", "").split()
    if words and all(_NUMBER_WORD.fullmatch(w.strip(",-")) for w in words[:6]) and len(words) <= 6:
        return " ".join(words)
    if 0 < len(words) <= _SHORT_WORDS and words[0].lower().strip("(") not in _STOP_WORDS:
        return phrase
    return None


def _bracket_end(text: str) -> int | None:
    """Index of the bracket closing the one at 0 (``(``/``[`` closed by ``)`` or ``]``)."""
    depth = 0
    for i, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _markers(text: str) -> list[tuple[int, str]]:
    """Every final-answer marker with a readable value, as (position, value)."""
    found: list[tuple[int, str]] = []
    for match in _GSM8K.finditer(text):
        value = _answer_value(match.group(1))
        if value is not None and any(c.isdigit() for c in value):
            found.append((match.start(), value))
    for match in _PHRASE.finditer(text):
        line_end = text.find("\n", match.end())
        value = _answer_value(text[match.end() : line_end if line_end >= 0 else len(text)])
        if value is not None:
            found.append((match.start(), value))
    for match in _BOXED.finditer(text):
        boxed = _boxed_at(text, match.end())
        if boxed is not None and (value := _strip_delimiters(boxed)):
            found.append((match.start(), _clean_boxed(value)))
    return found


def _clean_boxed(value: str) -> str:
    """A boxed number loses ``$``, thousands commas and a trailing ``.`` (``\\boxed{42.}``)."""
    number = _NUMBER.fullmatch(value)
    return _clean_number(value) if number is not None else value


def _enclosing(text: str, start: int, end: int) -> str | None:
    """The point ``(a, b)`` or matrix around ``text[start:end]``, if there is one."""
    for match in _MATRIX_ENV.finditer(text):
        if match.start() <= start and end <= match.end():
            return match.group(0)
    open_at = max(text.rfind("(", 0, start), text.rfind("[", 0, start))
    if open_at < 0 or start - open_at > 80:
        return None
    close = _bracket_end(text[open_at:])
    if close is None or open_at + close < end:
        return None
    group = text[open_at : open_at + close + 1]
    inner = group[1:-1]
    is_short = "," in inner and len(group) < 60
    is_math = re.fullmatch(r"[\s\d.,+\-/\\a-zA-Z{}^]*", inner) is not None
    has_words = re.search(r"[a-zA-Z]{3,}", inner.replace("\\frac", "").replace("\\sqrt", ""))
    return group if is_short and is_math and not has_words else None


def _last_number(text: str) -> str | None:
    """The fallback: the last number (or the point, matrix or inline math around it)."""
    numbers = [
        m
        for m in _NUMBER.finditer(text)
        if _NEGATED.search(text[max(0, m.start() - 30) : m.start()]) is None
    ]
    spans = [m for m in _MATH_SPAN.finditer(text) if any(c.isdigit() for c in m.group(0))]
    last_number = numbers[-1] if numbers else None
    last_span = spans[-1] if spans else None
    if last_span is not None and (last_number is None or last_span.end() >= last_number.end()):
        inner = next(g for g in last_span.groups() if g is not None).strip()
        value = _answer_value(inner)
        if value is not None:
            return value
    if last_number is None:
        return None
    enclosing = _enclosing(text, last_number.start(), last_number.end())
    if enclosing is not None:
        return enclosing
    return _clean_number(last_number.group("number")) or None


def extract_answer(text: str) -> str | None:
    r"""Return the final answer in ``text``, or ``None`` when nothing can be read.

    >>> extract_answer("3 + 4 = 7 so\n#### 1,007")
    '1007'
    >>> extract_answer("Adding gives 12 apples. The answer is 12.")
    '12'
    >>> extract_answer(r"The answer is 10. Wait, recount: $\boxed{12}$.")
    '12'
    >>> extract_answer("So 3 of the 8 slices: the share is 3/8.")
    '3/8'
    >>> extract_answer("I have no idea") is None
    True
    """
    text = text.replace("\u2212", "-")
    markers = _markers(text)
    if not markers:
        return _last_number(text)
    # A new question the model went on to write after its first answer is not its answer.
    header = _NEW_QUESTION.search(text, min(position for position, _ in markers))
    if header is not None:
        markers = [marker for marker in markers if marker[0] < header.start()]
    return max(markers, key=lambda marker: marker[0])[1]

"""Command line: ``python -m strategies --list`` prints each registered name and its kind."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from strategies.registry import REGISTRY, names


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m strategies", description=__doc__)
    parser.add_argument("--list", action="store_true", help="print every registered name<TAB>kind")
    args = parser.parse_args(argv)
    if not args.list:
        parser.print_help()
        return 2
    for name in names():
        sys.stdout.write(f"{name}\t{REGISTRY[name].kind}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

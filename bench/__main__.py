"""Run a benchmark: `python -m bench NAME` (or `all`).

Each benchmark is a module `bench/NAME.py` with `run() -> Result`. It prints a readable
table and ends with one line holding a JSON object of its figures.
"""

from __future__ import annotations

import importlib
import sys

from bench.report import BENCHMARKS, print_result


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in (*BENCHMARKS, "all"):
        print(f"usage: python -m bench {{{'|'.join(BENCHMARKS)}|all}}", file=sys.stderr)
        return 2
    names = BENCHMARKS if argv[0] == "all" else (argv[0],)
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print_result(module.run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

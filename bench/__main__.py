"""`python -m bench`: run the benchmark and write bench/report.md and bench/results.json."""

from __future__ import annotations

import sys

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""The cross-domain benchmark of ``diffkit bench``, from a checkout: a thin caller.

    python benchmarks/bench.py --suite smoke --out benchmarks/results/bench-smoke
    python benchmarks/bench.py --suite full --domains toy --out benchmarks/results/bench

Every option is ``diffkit bench``'s (``diffkit bench --help``); the cases live beside each
domain (``diffkit/domains/*/bench.py``) and the runner in ``diffkit.bench``.
"""

from __future__ import annotations

import sys

from diffkit.cli import main

if __name__ == "__main__":
    main(["bench", *sys.argv[1:]])

"""Case 9: what ``import asignal`` costs, against ``import blinker``.

Each figure is the time of the ``import`` statement alone, measured inside a fresh
interpreter (``python -c``), so nothing is cached in ``sys.modules``; the median is taken
over rounds, and the libraries alternate within each round so drift hits them alike.
Every library loads from compiled bytecode, as an installed package does: the
interpreters write and read it in a private cache (``PYTHONPYCACHEPREFIX``), filled by
one untimed import each, whatever ``PYTHONDONTWRITEBYTECODE`` says (otherwise a source
checkout would be timed compiling itself against a wheel's ``.pyc`` files).
Target: asignal <= 1.5 x blinker. The floor is the standard-library modules the core
cannot do without (``typing``, ``weakref``, ``threading``, ``contextvars``...), imported
the same way: what any implementation would pay.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable

from ._harness import Config, Row, Series, ratio_check

MS = 1e3

#: What each column imports.
STATEMENTS = {
    "asignal": "import asignal",
    "blinker": "import blinker",
    "django": "import django.dispatch",
    "floor": "import contextlib, contextvars, functools, itertools, threading, typing, weakref",
}

_PROGRAM = (
    "import time\nt0 = time.perf_counter()\n{statement}\nprint(repr(time.perf_counter() - t0))\n"
)

#: The target: asignal's import costs at most this many times blinker's.
LIMIT = 1.5


def import_seconds(statement: str, env: dict[str, str] | None = None) -> float:
    """Seconds that ``statement`` takes in a fresh interpreter run with ``env``."""
    out = subprocess.run(
        [sys.executable, "-c", _PROGRAM.format(statement=statement)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return float(out.stdout.strip().splitlines()[-1])


def _bytecode_env(cache: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


def _one_import(statement: str) -> Callable[[int], float]:
    # The rounds are driven by run() (one fresh interpreter per value), not the harness.
    def once(loops: int) -> float:
        return import_seconds(statement)

    return once


def run(cfg: Config) -> tuple[list[Row], list[Series]]:
    """Measure every column in ``cfg.rounds`` rounds of fresh interpreters."""
    series = {
        lib: Series(f"import/{lib}", _one_import(statement), loops=1)
        for lib, statement in STATEMENTS.items()
    }
    order = list(series)
    with tempfile.TemporaryDirectory(prefix="asignal-bench-pycache-") as cache:
        env = _bytecode_env(cache)
        for statement in STATEMENTS.values():
            import_seconds(statement, env)  # fills the bytecode cache
        for round_no in range(max(cfg.rounds, 3)):
            k = round_no % len(order)
            for lib in order[k:] + order[:k]:
                series[lib].values.append(import_seconds(STATEMENTS[lib], env))
    cells: dict[str, float | None] = {
        lib: statistics.median(s.values) * MS for lib, s in series.items()
    }
    row = Row(
        "9",
        "import, fresh interpreter",
        "-",
        "-",
        "ms",
        cells,
        floor_is="the standard-library modules the core needs, imported the same way",
    )
    row.notes["django"] = "import django.dispatch"
    row.checks.append(ratio_check(f"a/b≤{LIMIT:g}", row, "blinker", LIMIT))
    return [row], list(series.values())

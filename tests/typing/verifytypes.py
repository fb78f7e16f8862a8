"""Fail when ``pyright --verifytypes asignal`` finds the public API less than ``--min``
per cent type-complete, and say which symbols cost the most.

Run by ``make typecheck`` with this checkout's virtualenv: pyright finds the installed
packages through the ``python`` first on ``PATH``, so the virtualenv's ``bin`` goes first,
and ``PYTHONPATH`` points at this checkout so that its ``asignal`` is the one verified.

    .venv/bin/python tests/typing/verifytypes.py --min 95
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent


def verify(package: str) -> dict[str, Any]:
    """pyright's ``--outputjson`` report of ``--verifytypes package``."""
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "VIRTUAL_ENV": str(bin_dir.parent),
    }
    result = subprocess.run(
        [str(bin_dir / "pyright"), "--verifytypes", package, "--ignoreexternal", "--outputjson"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        report: dict[str, Any] = json.loads(result.stdout)
    except json.JSONDecodeError:
        sys.exit(f"pyright gave no report:\n{result.stdout}\n{result.stderr}")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--package", default="asignal")
    parser.add_argument("--min", type=float, default=95.0, help="per cent")
    args = parser.parse_args()
    completeness = verify(args.package)["typeCompleteness"]
    where = completeness.get("packageRootDirectory") or ""
    if Path(where).resolve() != (ROOT / args.package).resolve():
        sys.exit(f"pyright verified {where!r}, not this checkout's {args.package}")
    score = 100 * completeness["completenessScore"]
    problems = [
        (symbol["name"], diagnostic["message"].splitlines()[0])
        for symbol in completeness["symbols"]
        for diagnostic in symbol.get("diagnostics", [])
        if diagnostic.get("severity") == "error"
    ]
    print(f"pyright --verifytypes {args.package}: {score:.1f} % type-complete (minimum {args.min})")
    if score < args.min:
        for name, message in problems[:40]:
            print(f"  {name}: {message}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

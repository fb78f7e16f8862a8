"""The package as its users get it: what ``python -m build`` makes passes ``twine check
--strict``, holds what it should (the license, ``py.typed``, no tests in the wheel; what
the tests need in the sdist), and the sdist's own tests pass in a clean virtualenv.

Building and installing takes a minute or two, so the test is marked ``slow``;
``make test`` runs it (``pytest`` without ``-m``). The clean virtualenv gets the wheel
built from the sdist, its extras and the sdist's ``dev`` dependency group, from pip's
cache where it can.
"""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import trove_classifiers

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
NAME = PYPROJECT["project"]["name"]
VERSION = PYPROJECT["project"]["version"]


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path


def _run(*args: str | Path, cwd: Path = ROOT, timeout: float = 300) -> str:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "NO_MKDOCS_2_WARNING": "1"}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    out = tmp_path_factory.mktemp("dist")
    # Without flags, build makes the sdist, then the wheel from the unpacked sdist: the
    # wheel proves the sdist complete enough to build.
    _run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
    return Dists(sdist, wheel)


def _sdist_names(dists: Dists) -> set[str]:
    with tarfile.open(dists.sdist) as archive:
        return {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}


def _wheel_names(dists: Dists) -> set[str]:
    with zipfile.ZipFile(dists.wheel) as archive:
        return set(archive.namelist())


def _metadata(dists: Dists) -> email.message.Message:
    with zipfile.ZipFile(dists.wheel) as archive:
        text = archive.read(f"{NAME}-{VERSION}.dist-info/METADATA").decode()
    return email.parser.Parser().parsestr(text)


@pytest.mark.slow
def test_twine_check_strict(dists: Dists) -> None:
    _run(sys.executable, "-m", "twine", "check", "--strict", dists.sdist, dists.wheel)


@pytest.mark.slow
def test_wheel_contents(dists: Dists) -> None:
    names = _wheel_names(dists)
    info = f"{NAME}-{VERSION}.dist-info"
    assert f"{info}/licenses/LICENSE" in names
    assert "asignal/py.typed" in names
    assert "asignal/signals.py" in names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "examples/"))]
    assert {n.split("/")[0] for n in names} == {"asignal", info}


@pytest.mark.slow
def test_sdist_contents(dists: Dists) -> None:
    names = _sdist_names(dists)
    # What the sdist's tests import or read: benchmarks/, examples/, the Makefile, docs.
    for needed in (
        "LICENSE",
        "README.md",
        "CHANGES.md",
        "Makefile",
        "mkdocs.yml",
        "pyproject.toml",
        "asignal/py.typed",
        "tests/conftest.py",
        "benchmarks/__main__.py",
        "examples/demo.py",
        "docs/index.md",
        "docs/_ext/rst_docstrings.py",
    ):
        assert needed in names, needed
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


@pytest.mark.slow
def test_metadata(dists: Dists) -> None:
    metadata = _metadata(dists)
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL") or [])
    assert {"Source", "Issues", "Changelog", "Documentation"} <= set(urls)
    classifiers = metadata.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers
    # PyPI rejects an upload with an unknown classifier; twine check does not look.
    unknown = [c for c in classifiers if c not in trove_classifiers.classifiers]
    assert not unknown
    # No public extra carries the development tools (they are a dependency group).
    assert "dev" not in (metadata.get_all("Provides-Extra") or [])
    starlette = [r for r in metadata.get_all("Requires-Dist") or [] if r.startswith("starlette")]
    [starlette] = starlette
    assert "<" in starlette, "the adapter subclasses a private class: cap the version"


@pytest.mark.slow
def test_sdist_tests_pass_in_a_clean_venv(dists: Dists, tmp_path: Path) -> None:
    with tarfile.open(dists.sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    [source] = [p for p in tmp_path.iterdir() if p.is_dir()]
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    extras = ",".join(PYPROJECT["project"]["optional-dependencies"])
    # This environment's pip installs into the new one (--python): it is recent enough
    # for --group (PEP 735), which the stdlib's bundled pip is not.
    _run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--quiet",
        f"{dists.wheel}[{extras}]",
        "--group",
        f"{source / 'pyproject.toml'}:dev",
        timeout=900,
    )
    # The sdist's tests, as a user runs them there, against the installed wheel: the
    # source tree's asignal/ is moved away so that it cannot be imported instead.
    shutil.move(source / "asignal", tmp_path / "asignal-source")
    output = _run(
        python, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider", cwd=source
    )
    installed = _run(python, "-c", "import asignal; print(asignal.__file__)", cwd=tmp_path)
    assert installed.startswith(str(venv)), installed
    summary = output.strip().splitlines()[-1]
    assert " passed" in summary, summary
    # "3 xfailed" is a pass; only a count of failed tests or errors is not.
    assert not re.search(r"\b\d+ (failed|errors?)\b", summary), summary
    assert "error" not in summary, summary

"""The type-checked user code also runs as it says: see :mod:`tests.typing.user_code`."""

from __future__ import annotations

from tests.typing import user_code


def test_user_code_runs() -> None:
    user_code.main()

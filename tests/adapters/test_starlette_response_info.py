"""``ResponseInfo``, the record ``request_finished`` carries: its ``__init__`` is written
by hand (for speed), so what the dataclass would give it is checked here."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest
from starlette.datastructures import Headers

from asignal.adapters.starlette import ResponseInfo


def test_response_info_is_a_frozen_dataclass_of_its_two_fields() -> None:
    headers = Headers(raw=[(b"x-demo", b"1")])
    info = ResponseInfo(200, headers)
    assert (info.status_code, info.headers) == (200, headers)
    assert ResponseInfo(status_code=200, headers=headers) == info
    assert ResponseInfo(404, headers) != info
    assert [field.name for field in dataclasses.fields(info)] == ["status_code", "headers"]
    assert repr(info) == f"ResponseInfo(status_code=200, headers={headers!r})"
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.status_code = 500  # type: ignore[misc]


def test_response_info_copies_replaces_and_pickles() -> None:
    info = ResponseInfo(201, Headers(raw=[(b"location", b"/items/1")]))
    assert dataclasses.replace(info, status_code=202) == ResponseInfo(202, info.headers)
    assert copy.copy(info) == info
    assert pickle.loads(pickle.dumps(info)) == info


def test_response_info_takes_exactly_its_fields() -> None:
    with pytest.raises(TypeError):
        ResponseInfo(200)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ResponseInfo(200, Headers(), "body")  # type: ignore[call-arg]

"""The weak-reference pitfall: a short-lived receiver collected before any send reached it
is diagnosed with a WeakReceiverWarning naming it and where it was connected."""

from __future__ import annotations

import functools
import gc
import sys
import warnings
from collections.abc import Callable
from typing import Any

import pytest

import asignal
from asignal import Signal, WeakReceiverWarning


def module_level(sender: Any, **kwargs: Any) -> str:
    return "module"


class Service:
    def on_event(self, sender: Any, **kwargs: Any) -> str:
        return "method"


def connect_local(sig: Signal) -> int:
    """Connects a receiver defined here, weakly; returns the line of the connect call."""

    def on_event(sender: Any, **kwargs: Any) -> None: ...

    sig.connect(on_event)
    return sys._getframe().f_lineno - 1


def collected_warnings(action: Callable[[], Any]) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
        gc.collect()
    return [w for w in caught if issubclass(w.category, WeakReceiverWarning)]


def test_a_local_receiver_collected_before_any_send_is_diagnosed() -> None:
    sig = asignal.signal("weak-warning-test")
    lines: list[int] = []
    caught = collected_warnings(lambda: lines.append(connect_local(sig)))
    assert len(caught) == 1
    warning = caught[0]
    message = str(warning.message)
    assert "tests.test_signal_weak_warning.connect_local.<locals>.on_event" in message
    assert "'weak-warning-test'" in message
    assert f"{__file__}:{lines[0]}" in message
    assert "weak=False" in message
    # Attributed to the connect call, so that filters by module and line apply.
    assert (warning.filename, warning.lineno) == (__file__, lines[0])
    assert sig.send(None) == []


@pytest.mark.parametrize("kind", ["lambda", "partial"])
def test_lambdas_and_partials_are_diagnosed(kind: str) -> None:
    sig = Signal()

    def connect() -> None:
        if kind == "lambda":
            sig.connect(lambda sender: None)
        else:
            sig.connect(functools.partial(module_level, tag=1))

    caught = collected_warnings(connect)
    assert len(caught) == 1
    assert ("<lambda>" if kind == "lambda" else "functools.partial of module_level") in str(
        caught[0].message
    )


def test_no_warning_for_a_module_level_function() -> None:
    sig = Signal()

    def connect() -> None:
        sig.connect(module_level)
        sig.disconnect(module_level)

    assert collected_warnings(connect) == []


def test_no_warning_for_a_bound_method_of_a_live_object() -> None:
    sig = Signal()
    service = Service()
    assert collected_warnings(lambda: sig.connect(service.on_event)) == []
    assert sig.send(None) == [(service.on_event, "method")]


def test_no_warning_for_a_bound_method_whose_instance_goes() -> None:
    # A weak method lives as long as its instance: that is what weak=True is for.
    sig = Signal()
    assert collected_warnings(lambda: sig.connect(Service().on_event)) == []


def test_no_warning_once_the_receiver_has_been_called() -> None:
    sig = Signal()
    calls: list[str] = []

    def connect_and_send() -> None:
        def on_event(sender: Any) -> None:
            calls.append("called")

        sig.connect(on_event)
        sig.send(None)

    assert collected_warnings(connect_and_send) == []
    assert calls == ["called"]


def test_no_warning_for_strong_receivers() -> None:
    sig = Signal()

    def connect() -> None:
        def on_event(sender: Any) -> None: ...

        sig.connect(on_event, weak=False)
        sig.disconnect(on_event)

    assert collected_warnings(connect) == []


def test_connect_via_names_the_users_line() -> None:
    sig = Signal()
    line = 0

    def connect() -> None:
        nonlocal line

        @sig.connect_via(ANY_SENDER, weak=True)
        def on_event(sender: Any) -> None: ...

        line = sys._getframe().f_lineno - 3

    caught = collected_warnings(connect)
    assert len(caught) == 1
    assert f"{__file__}:{line}" in str(caught[0].message)


ANY_SENDER = asignal.ANY


def test_the_warning_class_is_a_public_user_warning() -> None:
    assert issubclass(asignal.WeakReceiverWarning, UserWarning)
    assert "WeakReceiverWarning" in asignal.__all__

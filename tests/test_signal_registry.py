"""What the registry keeps: weak references, meta-signals, and connections from other
threads while sends run."""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest

from asignal import ANY, Signal


def collect_garbage() -> None:
    gc.collect()
    gc.collect()


# --- weak references ----------------------------------------------------------------------------


def test_weak_function_receiver_vanishes_when_collected() -> None:
    sig = Signal()

    def make() -> Any:
        def receiver(s: Any) -> str:
            return "alive"

        return receiver

    receiver = make()
    sig.connect(receiver)
    assert sig.send() == [(receiver, "alive")]
    del receiver
    collect_garbage()
    assert sig.send() == []
    assert not sig.receivers


def test_weak_bound_method_receiver_vanishes_with_its_instance() -> None:
    class Listener:
        def __init__(self) -> None:
            self.calls = 0

        def on_event(self, sender: Any) -> int:
            self.calls += 1
            return self.calls

    sig = Signal()
    listener = Listener()
    sig.connect(listener.on_event)  # a temporary bound method, held by WeakMethod
    assert [value for _, value in sig.send()] == [1]
    del listener
    collect_garbage()
    assert sig.send() == []
    assert not sig.receivers


def test_strong_receiver_survives() -> None:
    sig = Signal()
    sig.connect(lambda s: "kept", weak=False)
    collect_garbage()
    assert [value for _, value in sig.send()] == ["kept"]


def test_collected_sender_drops_its_receivers() -> None:
    class Sender:
        pass

    sig = Signal()
    sender = Sender()

    def receiver(s: Any) -> None: ...

    sig.connect(receiver, sender=sender)
    assert sig.receivers
    del sender
    collect_garbage()
    assert not sig.receivers


def test_weak_receiver_that_cannot_be_weakly_referenced_is_refused_by_name() -> None:
    class Slotted:
        __slots__ = ()

        def __call__(self, sender: Any) -> None: ...

    with pytest.raises(TypeError, match=r"Slotted instance.*weak=False"):
        Signal().connect(Slotted())
    sig = Signal()
    sig.connect(Slotted(), weak=False)
    assert len(sig.send()) == 1


# --- meta-signals --------------------------------------------------------------------------------


def test_meta_signals_fire_with_blinkers_kwargs() -> None:
    sig = Signal()
    connected: list[tuple[Any, dict[str, Any]]] = []
    disconnected: list[tuple[Any, dict[str, Any]]] = []

    def on_connect(s: Any, **kw: Any) -> None:
        connected.append((s, kw))

    def on_disconnect(s: Any, **kw: Any) -> None:
        disconnected.append((s, kw))

    sig.receiver_connected.connect(on_connect)
    sig.receiver_disconnected.connect(on_disconnect)
    sender = object()

    def receiver(s: Any) -> None: ...

    sig.connect(receiver, sender=sender, weak=False)
    sig.disconnect(receiver, sender=sender)
    assert connected == [(sig, {"receiver": receiver, "sender": sender, "weak": False})]
    assert disconnected == [(sig, {"receiver": receiver, "sender": sender})]


def test_meta_receiver_refusing_with_type_error_undoes_the_connect() -> None:
    sig = Signal()

    def refuse(s: Any, **kw: Any) -> None:
        raise TypeError("not this one")

    sig.receiver_connected.connect(refuse)

    def receiver(s: Any) -> None: ...

    with pytest.raises(TypeError, match="not this one"):
        sig.connect(receiver)
    assert not sig.receivers


# --- threads --------------------------------------------------------------------------------------


def test_connect_and_disconnect_from_threads_while_sending() -> None:
    sig = Signal()
    stayed_calls: list[int] = []

    def stays(s: Any) -> None:
        stayed_calls.append(1)

    sig.connect(stays)
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn(n: int) -> None:
        try:
            receivers = [(lambda s, i=i: i) for i in range(50)]
            while not stop.is_set():
                for r in receivers:
                    sig.connect(r, sender=n if n % 2 else ANY, weak=False)
                for r in receivers:
                    sig.disconnect(r)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    sends = 0
    try:
        for sends in range(1, 2001):  # noqa: B007 - counted below
            results = sig.send(1)
            assert (stays, None) in results
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert len(stayed_calls) == sends
    assert list(sig.receivers_for(1)) == [stays]

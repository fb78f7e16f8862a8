"""The blinker-compatible surface: names, connecting, filtering, ``send``, and
``asignal.testing.capture``. Weak references, meta-signals and threads are in
tests/test_signal_registry.py; bad options in tests/test_signal_options.py."""

from __future__ import annotations

import functools
import gc
from typing import Any

import pytest

import asignal
from asignal import ANY, NamedSignal, Namespace, Signal
from asignal.testing import capture


def collect_garbage() -> None:
    gc.collect()
    gc.collect()


# --- names and namespaces ---------------------------------------------------------------------


def test_public_names_match_blinker() -> None:
    import blinker

    assert set(blinker.__all__) <= set(asignal.__all__)
    for name in ("connect", "connect_via", "connected_to", "muted", "disconnect", "send",
                 "send_async", "receivers_for", "has_receivers_for", "receiver_connected",
                 "receiver_disconnected"):  # fmt: skip
        assert hasattr(Signal(), name), name
    assert Signal.ANY is ANY
    assert repr(ANY) == "ANY"


def test_named_signals_are_the_same_object_for_the_same_name() -> None:
    assert asignal.signal("test-same-name") is asignal.signal("test-same-name")
    assert asignal.signal("test-same-name") is asignal.default_namespace["test-same-name"]
    ns = Namespace()
    first = ns.signal("x", doc="the doc")
    assert ns.signal("x") is first
    assert isinstance(first, NamedSignal)
    assert first.name == "x"
    assert first.__doc__ == "the doc"
    assert "; 'x'>" in repr(first)
    assert Namespace().signal("x") is not first


def test_importing_asignal_imports_no_framework() -> None:
    import subprocess
    import sys

    code = (
        "import sys, asignal, asignal.signals, asignal.testing;"
        "bad = [m for m in ('quart', 'starlette', 'fastapi', 'trio') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_core_imports_no_event_loop_and_no_heavy_stdlib() -> None:
    # What only some sends need is imported by the first send that needs it: this keeps
    # ``import asignal`` within 1.5 x ``import blinker`` (benchmarks/bench_import.py).
    # The package's __init__ is skipped, so that this holds the signal core (Signal and
    # its engine) to it, whatever else asignal/__init__.py imports.
    import subprocess
    import sys
    from pathlib import Path

    package = Path(asignal.__file__).parent
    heavy = ("asyncio", "trio", "anyio", "sniffio", "inspect", "logging", "difflib")
    code = (
        "import sys, types;"
        "pkg = types.ModuleType('asignal');"
        f"pkg.__path__ = [{str(package)!r}];"
        "sys.modules['asignal'] = pkg;"
        "import asignal._signal, asignal._namespace;"
        f"bad = [m for m in {heavy!r} if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- connecting and sending ------------------------------------------------------------------


def test_send_calls_receivers_in_connection_order_and_returns_their_values() -> None:
    sig = Signal()

    def first(sender: Any, **kw: Any) -> str:
        return f"first {sender} {kw}"

    def second(sender: Any, **kw: Any) -> str:
        return "second"

    assert sig.connect(first) is first
    sig.connect(second)
    assert sig.send("app", a=1) == [(first, "first app {'a': 1}"), (second, "second")]
    assert list(sig.receivers_for("app")) == [first, second]


def test_send_default_sender_is_none() -> None:
    sig = Signal()
    seen: list[Any] = []
    sig.connect(lambda sender: seen.append(sender), weak=False)
    sig.send()
    assert seen == [None]


def test_sender_filtering_and_any() -> None:
    sig = Signal()
    a, b = object(), object()
    calls: list[str] = []

    def for_a(sender: Any) -> None:
        calls.append("a")

    def for_any(sender: Any) -> None:
        calls.append("any")

    sig.connect(for_a, sender=a)
    sig.connect(for_any)
    sig.send(a)
    sig.send(b)
    assert calls == ["a", "any", "any"]
    assert sig.has_receivers_for(a)
    assert list(sig.receivers_for(b)) == [for_any]
    sig.disconnect(for_any)
    assert not sig.has_receivers_for(b)
    assert sig.has_receivers_for(a)


def test_receiver_connected_to_any_and_to_a_sender_is_called_once() -> None:
    sig = Signal()
    sender = object()
    calls: list[Any] = []

    def receiver(s: Any) -> None:
        calls.append(s)

    sig.connect(receiver)
    sig.connect(receiver, sender=sender)
    assert sig.send(sender) == [(receiver, None)]
    assert calls == [sender]


@pytest.mark.parametrize("sender", [0, False, "", 1.5, 0.0, b"", None])
def test_value_senders_work(sender: Any) -> None:
    # blinker 1.9 files sender 0 under its ANY key; asignal keeps values apart by type too.
    sig = Signal()
    calls: list[Any] = []

    def receiver(s: Any) -> None:
        calls.append(s)

    sig.connect(receiver, sender=sender)
    # An equal value that is another object is the same sender (floats are not interned).
    equal = float(str(sender)) if type(sender) is float else sender
    sig.send(equal)
    assert calls == [sender]
    assert sig.has_receivers_for(equal)
    # Different senders with equal hashes (0 == False == 0.0) stay different.
    for other in (0, False, 0.0, "", 1, object()):
        if type(other) is type(sender) and other == sender:
            continue
        assert sig.send(other) == []
        assert not sig.has_receivers_for(other)
    sig.disconnect(receiver, sender=sender)
    assert sig.send(sender) == []


def test_bound_method_sender() -> None:
    class App:
        def handler(self) -> None: ...

    app = App()
    sig = Signal()
    got: list[Any] = []
    sig.connect(lambda s: got.append(s), sender=app.handler, weak=False)
    sig.send(app.handler)  # a new bound-method object, the same function and instance
    assert len(got) == 1


def test_connect_via_and_connected_to() -> None:
    sig = Signal()
    sender = object()

    @sig.connect_via(sender)
    def receiver(s: Any) -> str:
        return "via"

    assert sig.send(sender) == [(receiver, "via")]
    assert sig.send(object()) == []

    def temporary(s: Any) -> str:
        return "temporary"

    seen: list[Any] = []

    def fail_inside() -> None:
        with sig.connected_to(temporary):
            seen.extend(sig.send(object()))
            raise KeyError("the block fails")

    with pytest.raises(KeyError):
        fail_inside()
    assert seen == [(temporary, "temporary")]
    assert list(sig.receivers_for(object())) == []


def test_muted_nests_and_restores() -> None:
    sig = Signal()
    sig.connect(lambda s: 1, weak=False)
    with sig.muted():
        assert sig.is_muted
        with sig.muted():
            assert sig.send() == []
        assert sig.is_muted
        assert sig.send() == []
    assert not sig.is_muted
    assert len(sig.send()) == 1


@pytest.mark.anyio
async def test_muted_send_async_returns_nothing() -> None:
    sig = Signal()

    async def receiver(s: Any) -> int:
        return 1

    sig.connect(receiver)
    with sig.muted():
        assert await sig.send_async() == []
    assert await sig.send_async() == [(receiver, 1)]


def test_disconnect_from_one_sender_keeps_the_others() -> None:
    sig = Signal()
    a, b = object(), object()

    def receiver(s: Any) -> None: ...

    sig.connect(receiver, sender=a)
    sig.connect(receiver, sender=b)
    sig.disconnect(receiver, sender=a)
    assert not sig.has_receivers_for(a)
    assert sig.has_receivers_for(b)
    sig.disconnect(receiver, sender=b)
    assert not sig.receivers
    sig.disconnect(receiver)  # not connected: nothing happens


def test_receivers_is_truthy_when_anything_is_connected() -> None:
    sig = Signal()
    assert not sig.receivers

    def receiver(s: Any) -> None: ...

    sig.connect(receiver, sender=object())
    assert sig.receivers
    sig.disconnect(receiver)
    assert not sig.receivers


# --- send and coroutine receivers ---------------------------------------------------------------


def test_send_refuses_coroutine_receiver_by_name_before_calling_any() -> None:
    sig = Signal("doc")
    called: list[str] = []

    def sync_first(s: Any) -> None:
        called.append("sync")

    async def on_request(s: Any) -> None: ...

    sig.connect(sync_first)
    sig.connect(on_request)
    with pytest.raises(RuntimeError, match=r"test_signal\..*on_request"):
        sig.send()
    assert called == []


def test_send_with_async_wrapper() -> None:
    import anyio

    sig = Signal()

    async def receiver(s: Any) -> str:
        return f"async {s}"

    sig.connect(receiver)

    def run_to_end(fn: Any) -> Any:
        return lambda *args, **kwargs: anyio.run(functools.partial(fn, *args, **kwargs))

    assert sig.send("x", _async_wrapper=run_to_end) == [(receiver, "async x")]


# --- asignal.testing.capture ----------------------------------------------------------------------


def test_capture_records_sends_and_disconnects() -> None:
    sig = Signal()
    sender = object()
    with capture(sig) as sent:
        sig.send(sender, a=1)
        sig.send("other", b=2)
    sig.send(sender, c=3)
    assert sent == [(sender, {"a": 1}), ("other", {"b": 2})]
    assert not sig.receivers


def test_capture_filters_by_sender_and_disconnects_on_error() -> None:
    sig = Signal()
    sender = object()
    recorded: list[Any] = []

    def fail_inside() -> None:
        with capture(sig, sender=sender) as sent:
            recorded.append(sent)
            sig.send("other")
            sig.send(sender, x=1)
            raise LookupError

    with pytest.raises(LookupError):
        fail_inside()
    assert recorded == [[(sender, {"x": 1})]]
    assert not sig.receivers


@pytest.mark.anyio
async def test_capture_sees_send_async() -> None:
    sig = Signal()

    async def other(s: Any, **kw: Any) -> str:
        return "other"

    sig.connect(other)
    with capture(sig) as sent:
        results = await sig.send_async("app", request="r")
    assert sent == [("app", {"request": "r"})]
    assert results[0] == (other, "other")

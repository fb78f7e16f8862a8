"""The client side: many concurrent requests over reused keep-alive connections, some
abandoned mid-stream, each reduced to what must not change (:class:`Outcome`)."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from dataclasses import dataclass, replace

import anyio
import httpx

from .apps import chunk

#: Headers that legitimately differ between two runs (the clock, the server's name).
VOLATILE_HEADERS = frozenset({"date", "server"})

# The mix of one plan cycle: plain, JSON, handled 404, unhandled 500, a response with a
# failing background task, a short stream read whole, a long one abandoned mid-stream.
_CYCLE = (
    ("/ok", False),
    ("/json", False),
    ("/fail", False),
    ("/ok", False),
    ("/missing", False),
    ("/background", False),
    ("/stream?n=6&size=700", False),
    ("/fail", False),
    ("/ok", False),
    ("/stream?n=64&size=16384", True),
)


#: The routes whose ASGI call ends with an exception after the response.
ERROR_ROUTES = ("/fail", "/background")


@dataclass(frozen=True)
class Planned:
    """Request ``rid`` for ``path``; with ``abandon`` the client reads the first chunk of
    the body, then closes the connection; with ``close`` it sends ``Connection: close``."""

    rid: int
    path: str
    abandon: bool
    close: bool = False


def plan(
    count: int, *, abandon: bool = True, first: int = 0, close_after_error: bool = False
) -> list[Planned]:
    """``count`` requests cycling through the route mix, ids from ``first``; with
    ``close_after_error`` the requests of :data:`ERROR_ROUTES` ask for ``Connection:
    close`` (see :attr:`tests.faults.apps.AppSpec.closes_after_error`)."""
    cycle = [(p, a) for p, a in _CYCLE if abandon or not a]
    return [
        Planned(rid, path, drop, close_after_error and path in ERROR_ROUTES)
        for rid, (path, drop) in zip(range(first, first + count), itertools.cycle(cycle))
    ]


@dataclass(frozen=True)
class Outcome:
    """What one request came back as. ``state`` is ``"done"`` (complete response),
    ``"abandoned"`` (the client left mid-stream as planned), ``"lost"`` (the server closed
    the connection without a response, or cut it), or ``"error"`` (anything else,
    ``ReadTimeout`` included: a hang)."""

    state: str
    status: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    error: str = ""
    #: How long the request took, as the client saw it (seconds); not compared.
    seconds: float = 0.0

    def digest(self) -> tuple[object, ...]:
        """What must be byte-identical between two runs."""
        return (self.state, self.status, self.headers, self.body)


async def _one(client: httpx.AsyncClient, item: Planned) -> Outcome:
    try:
        headers = {"x-req": str(item.rid)}
        if item.close:
            headers["connection"] = "close"
        async with client.stream("GET", item.path, headers=headers) as reply:
            kept = tuple(
                sorted((k, v) for k, v in reply.headers.items() if k not in VOLATILE_HEADERS)
            )
            if item.abandon:
                first = b""
                async for piece in reply.aiter_raw():
                    first = piece
                    break
                # Leaving the block closes a half-read response's connection.
                expected = chunk(item.rid, 0, 16384)
                ok = bool(first) and expected.startswith(first[: len(expected)])
                return Outcome("abandoned" if ok else "error", reply.status_code, kept)
            body = await reply.aread()
            return Outcome("done", reply.status_code, kept, body)
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        return Outcome("lost", error=f"{type(exc).__name__}: {exc}")
    except httpx.HTTPError as exc:
        return Outcome("error", error=f"{type(exc).__name__}: {exc}")


def client(url: str, *, concurrency: int, guard: float) -> httpx.AsyncClient:
    """An httpx client for ``url`` whose pool keeps up to ``concurrency`` keep-alive
    connections; ``guard`` (seconds) bounds each request, beyond it is an ``"error"``."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(guard))


async def run(
    client: httpx.AsyncClient, requests: list[Planned], *, concurrency: int
) -> dict[int, Outcome]:
    """Send ``requests`` from ``concurrency`` workers sharing ``client``, so its
    keep-alive connections are reused."""
    outcomes: dict[int, Outcome] = {}
    queue = iter(requests)

    async def worker() -> None:
        for item in queue:
            started = time.perf_counter()
            outcome = await _one(client, item)
            outcomes[item.rid] = replace(outcome, seconds=time.perf_counter() - started)

    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    return outcomes


@dataclass(frozen=True)
class Comparison:
    """How a run compares with the run without receivers, request by request."""

    lost: list[int]
    altered: list[int]
    errors: list[int]
    details: dict[int, str]
    #: Requests the run without receivers has no response for (keep-alive races of the
    #: server's own): nothing to compare them with.
    unknown: list[int]

    @property
    def clean(self) -> bool:
        return not (self.lost or self.altered or self.errors)

    def summary(self) -> str:
        shown = "; ".join(f"{rid}: {text}" for rid, text in list(self.details.items())[:6])
        counts = f"{len(self.lost)} lost, {len(self.altered)} altered, {len(self.errors)} errors"
        if shown:
            counts += f" (e.g. {shown})"
        if self.unknown:
            counts += f"; {len(self.unknown)} not comparable"
        return counts


def compare(
    baseline: dict[int, Outcome], run: dict[int, Outcome], requests: list[Planned]
) -> Comparison:
    lost: list[int] = []
    altered: list[int] = []
    errors: list[int] = []
    details: dict[int, str] = {}
    unknown: list[int] = []
    for item in requests:
        base, got = baseline[item.rid], run.get(item.rid, Outcome("error", error="missing"))
        if base.state not in ("done", "abandoned"):
            unknown.append(item.rid)
            continue
        if got.digest() == base.digest():
            continue
        if got.state == "lost":
            lost.append(item.rid)
            details[item.rid] = f"{item.path} lost ({got.error})"
        elif got.state == "error":
            errors.append(item.rid)
            details[item.rid] = f"{item.path} {got.error}"
        else:
            altered.append(item.rid)
            details[item.rid] = (
                f"{item.path} {base.status}->{got.status} {len(base.body)}->{len(got.body)} bytes"
            )
    return Comparison(lost, altered, errors, details, unknown)


def states(outcomes: dict[int, Outcome]) -> Counter[str]:
    return Counter(outcome.state for outcome in outcomes.values())

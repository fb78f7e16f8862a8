"""Signals across processes and hosts, on NATS JetStream (needs ``asignal[nats]``).

:class:`NatsBridge` forwards a signal's local sends to a JetStream stream and re-sends
messages from other processes locally, with a :class:`RemoteSender` as sender; a group
of processes can share a signal's messages as a work queue (at least once), or each
receive every message (broadcast, at most once). Bodies are JSON, never pickle.
``python -m asignal.bridges.nats`` runs a worker. nats-py is asyncio-only.
"""

try:
    import nats  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("asignal.bridges.nats needs nats-py: pip install 'asignal[nats]'") from exc

from ._bridge import NatsBridge
from ._codec import MalformedMessage, RemoteSender
from ._connect import NatsConnectError
from ._outbox import BridgeStats

__all__ = ["BridgeStats", "MalformedMessage", "NatsBridge", "NatsConnectError", "RemoteSender"]

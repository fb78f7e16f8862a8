"""What goes on the wire: subjects, headers and JSON bodies, and the sender they rebuild.

Bodies are JSON objects of the send's keyword arguments, never pickle: decoding a message
can only ever build dicts, lists, strings, numbers, booleans and ``None``, so a message
cannot choose which Python object gets built.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: JetStream de-duplicates publishes that carry the same id within the stream's window.
MSG_ID = "Nats-Msg-Id"
ORIGIN = "Asignal-Origin"
SENDER = "Asignal-Sender"
SENT_AT = "Asignal-Sent-At"
CONTENT_TYPE = "Content-Type"
JSON_TYPE = "application/json"
ERROR = "Asignal-Error"

# One subject token: NATS forbids whitespace, and '*' and '>' are wildcards.
_TOKEN = re.compile(r"[^\s.*>]+")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]")

#: The JSON encoder of bodies (compact, UTF-8, no NaN): ``dumps(obj) -> str``.
dumps = _dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_loads = json.JSONDecoder().decode


#: Kwarg types a send may hand to the publisher task unencoded: immutable, always JSON.
PLAIN = frozenset({str, int, bool, type(None)})


class MalformedMessage(ValueError):
    """A message that cannot be turned into a send (not JSON, not an object, a bad key)."""


@dataclass(frozen=True, slots=True)
class RemoteSender:
    """The sender of a send that came from another process through a bridge.

    Receivers can tell remote sends apart (``isinstance(sender, RemoteSender)``) and
    filter them by ``app``. At-least-once delivery means a receiver may see one message
    twice: ``message_id`` is the key to make it idempotent.

    :param app: the sending process's name for its sender (``sender_name`` of
        :meth:`~asignal.bridges.nats.NatsBridge.forward`, by default the sender's class
        name, or the sender itself when it is a string).
    :param origin: the id of the bridge that published the message (one per bridge).
    :param message_id: unique per send; the ``Nats-Msg-Id`` header.
    :param attempt: the delivery attempt, 1 for the first (JetStream's ``num_delivered``).
    :param published: when the message was published (UTC), or ``None`` if unknown.
    :param subject: the NATS subject it came on.
    """

    #: The sending process's name for its sender.
    app: str
    #: The id of the bridge that published the message.
    origin: str
    #: Unique per send (the ``Nats-Msg-Id`` header): the key for idempotent receivers.
    message_id: str
    #: The delivery attempt, 1 for the first.
    attempt: int = 1
    #: When the message was published (UTC), or ``None`` if unknown.
    published: datetime | None = None
    #: The NATS subject the message came on.
    subject: str = ""


def subject_token(name: str, what: str) -> str:
    """``name`` if it can be used in a NATS subject; else :class:`ValueError` naming
    ``what``. Dots are allowed: they make a hierarchy, as in ``orders.placed``."""
    if not name or not all(_TOKEN.fullmatch(part) for part in name.split(".")):
        raise ValueError(
            f"{what} {name!r} cannot be used in a NATS subject: use letters, digits, '-', "
            "'_' and '.' (no spaces, no '*' or '>', no empty part)"
        )
    return name


def consumer_name(group: str, signal_name: str) -> str:
    """The durable consumer of ``group`` for a signal: JetStream names allow no dots."""
    return _NOT_NAME.sub("_", f"{group}-{signal_name}")


def sender_label(sender: Any) -> str:
    """The default ``app`` of a send: a string sender itself, else its class name."""
    if isinstance(sender, str):
        return sender
    return "" if sender is None else type(sender).__name__


def encode(
    signal_name: str,
    sender: Any,
    kwargs: dict[str, Any],
    payload: Callable[..., Mapping[str, Any]] | None,
) -> bytes:
    """The JSON body of one send.

    :raises TypeError: a kwarg (or what ``payload`` returned) cannot be encoded as
        JSON; the message names the kwarg and the signal.
    """
    body: Any = kwargs if payload is None else payload(sender, **kwargs)
    try:
        return _dumps(body).encode()
    except (TypeError, ValueError) as exc:
        raise _why(signal_name, body, payload is not None) from exc


def _why(signal_name: str, body: Any, from_payload: bool) -> TypeError:
    where = "payload() of signal" if from_payload else "signal"
    if not isinstance(body, Mapping):
        return TypeError(f"{where} {signal_name!r} returned {type(body).__name__}, not a dict")
    for key, value in body.items():
        try:
            _dumps(value)
        except (TypeError, ValueError):
            return TypeError(
                f"kwarg {key!r} of {where} {signal_name!r} cannot be sent as JSON "
                f"({type(value).__name__}): pass payload= to bridge.forward() to choose "
                "what is sent"
            )
    return TypeError(f"the kwargs of {where} {signal_name!r} cannot be sent as JSON")


def decode(data: bytes) -> dict[str, Any]:
    """The kwargs of a message body.

    :raises MalformedMessage: not UTF-8 JSON, not an object, or a key that is not an
        identifier or starts with ``_`` (those would reach ``send_async``'s options).
    """
    try:
        body = _loads(data.decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedMessage(f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise MalformedMessage(f"body is a JSON {type(body).__name__}, not an object")
    for key in body:
        if not key.isidentifier() or key.startswith("_"):
            raise MalformedMessage(f"body key {key!r} is not a keyword argument name")
    return body


def remote_sender(
    headers: Mapping[str, str] | None,
    subject: str,
    *,
    fallback_id: str,
    attempt: int = 1,
    published: datetime | None = None,
) -> RemoteSender:
    """The :class:`RemoteSender` of a message's headers (missing ones are empty)."""
    h = headers or {}
    if published is None and (sent_at := h.get(SENT_AT)):
        try:
            published = datetime.fromtimestamp(float(sent_at), UTC)
        except (ValueError, OverflowError):
            published = None
    return RemoteSender(
        app=h.get(SENDER, ""),
        origin=h.get(ORIGIN, ""),
        message_id=h.get(MSG_ID) or fallback_id,
        attempt=attempt,
        published=published,
        subject=subject,
    )

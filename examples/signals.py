"""The examples' own signal: apps send it themselves, as a Flask app would send its own.

It lives in a :class:`~asignal.Namespace` of the examples, so it never collides with a
``user-logged-in`` signal that some other code defines in asignal's default namespace.
"""

from __future__ import annotations

import asignal

namespace = asignal.Namespace()

user_logged_in = namespace.signal(
    "user-logged-in",
    doc="""Sent by the example apps' ``POST /login`` route after a successful login.

    sender: the application. kwargs: ``user`` (``str``, the user name); ``ip`` (``str``,
    the client's address).""",
)

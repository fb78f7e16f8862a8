"""Runnable example apps for asignal, and the demo that drives them (``make demo``).

- :mod:`examples.signals`: the examples' own signal, ``user_logged_in``.
- :mod:`examples.receivers`: receivers written once and connected to
  :mod:`asignal.signals`; they serve the Starlette, FastAPI and Quart apps alike.
- :mod:`examples.starlette_app`, :mod:`examples.fastapi_app`, :mod:`examples.quart_app`:
  one small app per framework, each with asignal's adapter installed.
- :mod:`examples.timeline` and :mod:`examples.serving`: the demo's instruments: a
  recorder of which signal reached which receiver when, and in-process servers.
- :mod:`examples.demo`: ``python -m examples.demo``.
- :mod:`examples.demo_report`: what a demo run saw, and its checks.
- :mod:`examples.blinker_comparison`: asignal's and blinker's ``send_async`` timed on
  the same receivers.
"""

"""Side-by-side benchmarks: asignal against blinker, django.dispatch and raw Python floors.

Run the whole suite with ``make bench`` (``python -m benchmarks``); ``--smoke`` runs every
case once with tiny iteration counts. The method is described in ``docs/performance.md``.
"""

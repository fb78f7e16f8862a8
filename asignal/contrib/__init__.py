"""Integrations with other libraries that build on the core; each needs its own extra
(e.g. ``pip install 'asignal[otel]'`` for :mod:`asignal.contrib.opentelemetry`)."""

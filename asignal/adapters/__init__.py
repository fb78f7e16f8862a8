"""Framework adapters: each maps one framework's lifecycle onto :mod:`asignal.signals`.

Import the one you use, ``asignal.adapters.quart`` or ``asignal.adapters.starlette``;
importing this package imports neither framework.
"""

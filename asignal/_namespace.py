"""``NamedSignal``, ``Namespace`` and the default namespace behind ``signal()``, as
blinker's."""

from __future__ import annotations

from ._signal import Signal

__all__ = ["NamedSignal", "Namespace", "default_namespace", "signal"]


class NamedSignal(Signal):
    """A :class:`Signal` with a name, as blinker's ``NamedSignal``.

    :param name: the signal's name (its key in its :class:`Namespace`).
    :param doc: the signal's docstring.
    """

    def __init__(self, name: str, doc: str | None = None) -> None:
        super().__init__(doc)
        #: The signal's name.
        self.name: str = name

    def __repr__(self) -> str:
        base = super().__repr__()
        return f"{base[:-1]}; {self.name!r}>"


class Namespace(dict[str, NamedSignal]):
    """A dict of named signals, as blinker's ``Namespace``."""

    def signal(self, name: str, doc: str | None = None) -> NamedSignal:
        """Return the signal called ``name``, creating it on first use. The same name
        always gives the same object."""
        try:
            return self[name]
        except KeyError:
            return self.setdefault(name, NamedSignal(name, doc))


#: The namespace behind :func:`signal`, as blinker's ``default_namespace``.
default_namespace: Namespace = Namespace()


def signal(name: str, doc: str | None = None) -> NamedSignal:
    """Return the :class:`NamedSignal` called ``name`` in :data:`default_namespace`,
    creating it on first use, as blinker's ``signal``. The same name always gives the
    same object.

    :param name: the signal's name (its key in :data:`default_namespace`).
    :param doc: the signal's docstring, used only when the signal is created.
    :returns: the :class:`NamedSignal` called ``name``.
    """
    return default_namespace.signal(name, doc)

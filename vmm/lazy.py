"""Package attributes imported from their modules on first use (PEP 562 ``__getattr__``):
a package can name its whole API while importing one of its modules loads nothing else."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def exports(package: str, namespace: dict, homes: dict[str, str]) -> Callable[[str], object]:
    """The ``__getattr__`` of ``package``: ``homes`` maps each name to the module that
    defines it; the value found is kept in ``namespace`` (the package's globals)."""

    def __getattr__(name: str) -> object:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    return __getattr__

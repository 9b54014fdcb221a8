"""A package's public names, loaded when first used (PEP 562).

Django imports a package before its app registry is ready, and the modules behind the
names need the models: so the package imports them only when a name is looked up.
"""

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def exports(package: str, homes: Mapping[str, str], names: Sequence[str],
            defined: Mapping[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The package's `__getattr__` and `__dir__`: each name of `homes` from its module."""

    def getattr_(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(homes[name]), name)

    def dir_() -> list[str]:
        return sorted([*defined, *names])

    return getattr_, dir_

"""Package names that load their module on first use (PEP 562): ``import starpod_cron`` and
``import starpod_cron.store`` load none of their modules until a name is asked for."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def loader(package: str, where: Mapping[str, str], names: dict[str, Any]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package``: a name's value from the module ``where``
    says (relative to ``package``), kept in ``names`` (the package's globals), so it is
    looked up once."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        names[name] = value
        return value

    return __getattr__

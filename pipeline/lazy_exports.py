"""A package's public names, each imported from its module the first time it is used (PEP 562).

`pipeline.ingest` and `pipeline.storage` name heavy modules (pyarrow, the numba kernels) beside
light ones; a stage that only opens the object store should not pay for the kernels.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, modules: Mapping[str, tuple[str, ...]]) -> Callable[[str], Any]:
    """The `__getattr__` of `package`: each name in `modules` (module → its names), imported on
    first use and then kept in the package like an ordinary import."""
    home = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(home[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__

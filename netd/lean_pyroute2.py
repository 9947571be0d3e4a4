"""Import pyroute2's submodules without running its package ``__init__`` until needed.

``pyroute2/__init__.py`` imports the whole library to offer every class at the top level
(NDB with sqlite3, IPDB, wireless, devlink, conntrack...): 166 modules and about 8.6 MiB in
each daemon's image (docs/benchmarks.md, footprint), of which netd uses the rtnetlink,
nftables and IPVS parts, about 5 MiB. Python always runs a package's ``__init__`` before
importing one of its submodules, so :func:`defer_package_init` registers the package module
first with its ``__init__`` not yet run: its ``__path__`` and ``__spec__`` are the real ones,
so ``import pyroute2.iproute`` imports just that submodule and what it needs.

Nothing is lost: the first lookup of a name the package itself defines (``from pyroute2
import NetNS``, ``pyroute2.__version__``) runs the real ``__init__`` into that same module
(PEP 562's module ``__getattr__``), after which it is the ordinary package. netd's own
modules import from the submodules (``from pyroute2.iproute import IPRoute``).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any

PACKAGE = "pyroute2"
# Dunders the package's ``__init__`` defines: asking for one loads it.
_PACKAGE_DUNDERS = frozenset({"__version__", "__all__"})


def defer_package_init(name: str = PACKAGE) -> None:
    """Register ``name`` with its ``__init__`` deferred, unless it is imported already."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return  # not installed, or not a package: the ordinary import reports it
    module = importlib.util.module_from_spec(spec)

    def __getattr__(attr: str) -> Any:  # noqa: N807 (PEP 562's name)
        if (attr.startswith("__") and attr not in _PACKAGE_DUNDERS) or _is_submodule(name, attr):
            # Dunders the import system probes, and submodules it is about to import
            # (``from pyroute2 import config``), are not a reason to load everything.
            raise AttributeError(attr)
        _run_init(module)
        return getattr(module, attr)

    module.__dict__["__getattr__"] = __getattr__
    sys.modules[name] = module


def _is_submodule(package: str, attr: str) -> bool:
    try:
        return importlib.util.find_spec(f"{package}.{attr}") is not None
    except (ImportError, ValueError):
        return False


def _run_init(module: types.ModuleType) -> None:
    del module.__dict__["__getattr__"]  # ordinary lookups from now on
    spec = module.__spec__
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(module)

"""netd imports pyroute2's submodules without the package's import-everything ``__init__``
(netd.lean_pyroute2, issue #15), and a later top-level lookup still finds every name."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.daemon import REPO


def _run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def test_netd_loads_only_the_parts_of_pyroute2_it_uses() -> None:
    loaded = _run(
        """
        import sys
        import netd.process
        import pyroute2.config  # a submodule asked for by name: still not the whole package
        print(sorted({"pyroute2.ndb.main", "pyroute2.ipdb", "sqlite3"} & set(sys.modules)))
        """
    )
    assert loaded == "[]"


def test_a_top_level_name_loads_the_whole_package_into_the_same_module() -> None:
    found = _run(
        """
        import sys
        import netd.kernel
        first = sys.modules["pyroute2"]
        from pyroute2 import NDB, IPRoute
        import pyroute2
        from pyroute2.iproute import IPRoute as Direct
        print(pyroute2 is first, IPRoute is Direct, NDB.__module__, bool(pyroute2.__version__))
        """
    )
    assert found == "True True pyroute2.ndb.main True"


def test_an_already_imported_pyroute2_is_left_alone() -> None:
    found = _run(
        """
        import pyroute2
        import netd
        print("__getattr__" in vars(pyroute2), hasattr(pyroute2, "NDB"))
        """
    )
    assert found == "False True"

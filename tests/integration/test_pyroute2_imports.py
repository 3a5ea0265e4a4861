"""sockdiff imports pyroute2's modules without its package __init__, and breaks nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=False
    )


def test_one_module_without_the_package_init() -> None:
    """A snapshot's requests need pyroute2.netlink.diag, not IPRoute, NDB and the rest."""
    done = _run(
        """
        import sys
        from sockdiff.backends.netlink.sockets import inet_request
        from sockdiff.netns import entered
        assert len(inet_request(2, "tcp", 1)) == 72
        loaded = sorted(m for m in sys.modules if m.startswith("pyroute2"))
        assert "pyroute2.netlink.diag" in loaded, loaded
        assert "pyroute2.iproute" not in loaded and "pyroute2.ndb" not in loaded, loaded
        """
    )
    assert done.returncode == 0, done.stderr


def test_the_package_names_still_there_afterwards() -> None:
    """Code that later imports from the package itself gets the whole package."""
    done = _run(
        """
        from sockdiff import _pyroute2
        diag = _pyroute2.module("netlink.diag")
        import pyroute2
        from pyroute2 import IPRoute, netns
        from pyroute2.iproute import IPRoute as Same
        assert IPRoute is Same and netns.__name__ == "pyroute2.netns"
        assert pyroute2.__version__ and pyroute2.netlink.diag is diag
        try:
            pyroute2.no_such_name
        except AttributeError as err:
            assert "no_such_name" in str(err)
        else:
            raise AssertionError("no AttributeError")
        """
    )
    assert done.returncode == 0, done.stderr


def test_after_the_whole_package() -> None:
    """Where pyroute2 is already imported whole, module() just returns the module."""
    done = _run(
        """
        import pyroute2
        from sockdiff import _pyroute2
        assert _pyroute2.module("netns") is pyroute2.netns
        """
    )
    assert done.returncode == 0, done.stderr

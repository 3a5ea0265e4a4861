"""pyroute2's modules, imported without its package ``__init__``.

``import pyroute2.netlink.diag`` first runs ``pyroute2/__init__.py``, which imports
the whole library (IPRoute, NDB, conntrack, nl80211, WireGuard, ...): about 45 ms
of every netlink snapshot spent on modules sockdiff never calls. :func:`module`
imports only the module asked for (and what it imports itself). It does so by
registering the ``pyroute2`` package found the usual way, its ``__path__`` intact,
without running its ``__init__``; that runs on the first read of a name the
package would have defined, so ``from pyroute2 import IPRoute`` anywhere in the
process still works, only without the saving.

:func:`diag_requests` declares pyroute2's two sock_diag request messages on its
generic ``nlmsg``, field for field as ``pyroute2.netlink.diag`` declares them:
that module imports ``pyroute2.netlink.nlsocket``, and with it asyncio, ssl and
multiprocessing (~22 ms of every start), for classes sockdiff only encodes.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from functools import cache
from types import ModuleType
from typing import ClassVar

__all__ = ["diag_requests", "module"]

_lock = threading.Lock()


def module(name: str) -> ModuleType:
    """``pyroute2.NAME`` (e.g. ``"netlink.diag"``), without the package's ``__init__``.

    >>> module("netlink.diag").__name__
    'pyroute2.netlink.diag'
    """
    with _lock:
        if "pyroute2" not in sys.modules:
            _register_package()
    return importlib.import_module(f"pyroute2.{name}")


def _register_package() -> None:
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return  # not installed as a package: the plain import below says so in its own words
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def __getattr__(attr: str) -> object:  # PEP 562: asked for names the package lacks
        # A submodule is imported on its own; any other name is one of the package's
        # own, so its __init__ runs now, once, in place.
        if importlib.util.find_spec(f"pyroute2.{attr}") is not None:
            return importlib.import_module(f"pyroute2.{attr}")
        with _lock:
            if package.__dict__.pop("__getattr__", None) is not None:
                loader.exec_module(package)
        try:
            return package.__dict__[attr]
        except KeyError:
            raise AttributeError(f"module 'pyroute2' has no attribute {attr!r}") from None

    package.__dict__["__getattr__"] = __getattr__
    sys.modules["pyroute2"] = package


@cache
def diag_requests() -> tuple[type, type]:
    """(inet_diag_req, unix_diag_req): pyroute2's request messages, without ``netlink.diag``.

    The fields are ``pyroute2.netlink.diag``'s (include/uapi/linux/inet_diag.h and
    unix_diag.h); tests/test_requests.py holds their encodings byte-identical to
    pyroute2's own classes.
    """
    nlmsg = module("netlink").nlmsg

    class inet_diag_req(nlmsg):  # type: ignore[misc,valid-type]
        fields = (
            ("sdiag_family", "B"),
            ("sdiag_protocol", "B"),
            ("idiag_ext", "B"),
            ("__pad", "B"),
            ("idiag_states", "I"),
            ("idiag_sport", ">H"),
            ("idiag_dport", ">H"),
            ("idiag_src", ">4I"),
            ("idiag_dst", ">4I"),
            ("idiag_if", "I"),
            ("idiag_cookie", "Q"),
        )
        # pyroute2's class fills the unset addresses in its encode(); a default does here.
        defaults: ClassVar[dict[str, tuple[int, ...]]] = {
            "idiag_src": (0, 0, 0, 0),
            "idiag_dst": (0, 0, 0, 0),
        }

    class unix_diag_req(nlmsg):  # type: ignore[misc,valid-type]
        fields = (
            ("sdiag_family", "B"),
            ("sdiag_protocol", "B"),
            ("__pad", "H"),
            ("udiag_states", "I"),
            ("udiag_ino", "I"),
            ("udiag_show", "I"),
            ("udiag_cookie", "Q"),
        )

    return inet_diag_req, unix_diag_req

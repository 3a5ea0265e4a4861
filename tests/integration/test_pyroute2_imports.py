"""sockdiff imports pyroute2's modules without its package __init__, and breaks nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from sockdiff import _pyroute2
from sockdiff.backends.netlink import sockets
from tests.helpers.netns import run_in_netns

# What pyroute2.netlink.nlsocket brings in, and sockdiff's start must not.
HEAVY = ("asyncio", "ssl", "multiprocessing", "pyroute2.netlink.nlsocket")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=False
    )


def test_one_module_without_the_package_init() -> None:
    """A snapshot's requests need pyroute2.netlink, not IPRoute, NDB, nor netlink.diag's nlsocket."""
    done = _run(
        f"""
        import sys
        from sockdiff.backends.netlink.sockets import inet_request, unix_request
        from sockdiff.netns import entered
        assert len(inet_request(2, "tcp", 1)) == 72 and len(unix_request(1)) == 40
        loaded = sorted(m for m in sys.modules if m.startswith("pyroute2"))
        assert "pyroute2.netlink" in loaded, loaded
        assert "pyroute2.iproute" not in loaded and "pyroute2.ndb" not in loaded, loaded
        heavy = [m for m in {HEAVY!r} if m in sys.modules]
        assert not heavy and "pyroute2.netlink.diag" not in loaded, (heavy, loaded)
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


def test_a_live_snapshot_imports_no_asyncio_ssl_multiprocessing(netns: str) -> None:
    """The CLI's help and a whole netlink snapshot (sockets, links, routes) leave them out."""
    code = f"""
        import sys
        from sockdiff.cli import main
        assert main(["show", "--help"]) == 0
        assert main(["snapshot", "--backend", "netlink", "-o", "/dev/null"]) == 0
        heavy = [m for m in {HEAVY!r} if m in sys.modules]
        assert not heavy, heavy
        """
    done = run_in_netns(netns, [sys.executable, "-c", textwrap.dedent(code)], check=False)
    assert done.returncode == 0, done.stderr


# What a snapshot without processes, written to standard output, has no use for: a
# temporary file's name (secrets, and with it hashlib, hmac, random), borrowing another
# process's descriptor (ctypes), the owner scan, the snapshot store.
UNUSED = ("secrets", "hashlib", "ctypes", "sockdiff.processes", "sockdiff.store")


def test_a_snapshot_without_processes_imports_nothing_it_does_not_use(netns: str) -> None:
    """Issue 21's start-up: every module imported is paid by every run of the command."""
    code = f"""
        import sys
        from sockdiff.cli import main
        assert main(["snapshot", "--backend", "netlink", "--no-processes", "-o", "-"]) == 0
        unused = [m for m in {UNUSED!r} if m in sys.modules]
        assert not unused, unused
        """
    done = run_in_netns(netns, [sys.executable, "-c", textwrap.dedent(code)], check=False)
    assert done.returncode == 0, done.stderr


_U8 = st.integers(0, 0xFF)
_U16 = st.integers(0, 0xFFFF)
_U32 = st.integers(0, 0xFFFF_FFFF)
_U64 = st.integers(0, 2**64 - 1)
# Every field of each request (pyroute2.netlink.diag's declarations), any value.
_FIELDS = {
    "inet_diag_req": st.fixed_dictionaries(
        {
            "sdiag_family": _U8,
            "sdiag_protocol": _U8,
            "idiag_ext": _U8,
            "__pad": _U8,
            "idiag_states": _U32,
            "idiag_sport": _U16,
            "idiag_dport": _U16,
            "idiag_if": _U32,
            "idiag_cookie": _U64,
        }
    ),
    "unix_diag_req": st.fixed_dictionaries(
        {
            "sdiag_family": _U8,
            "sdiag_protocol": _U8,
            "__pad": _U16,
            "udiag_states": _U32,
            "udiag_ino": _U32,
            "udiag_show": _U32,
            "udiag_cookie": _U64,
        }
    ),
}


@settings(max_examples=100, deadline=None)
@given(seq=_U32, name=st.sampled_from(sorted(_FIELDS)), data=st.data())
def test_requests_encode_as_pyroute2s_own_classes(seq: int, name: str, data: st.DataObject) -> None:
    """sockdiff's request classes (declared on nlmsg) and pyroute2.netlink.diag's: the same bytes."""
    from pyroute2.netlink import diag

    ours = dict(zip(("inet_diag_req", "unix_diag_req"), _pyroute2.diag_requests(), strict=True))[name]
    fields = data.draw(_FIELDS[name])
    assert _encoded(ours, fields, seq) == _encoded(getattr(diag, name), fields, seq)
    # And the requests sockdiff sends.
    assert sockets.inet_request(2, "tcp", seq) == _encoded(diag.inet_diag_req, _INET_REQUEST_TCP4, seq)
    assert sockets.unix_request(seq) == _encoded(diag.unix_diag_req, _UNIX_REQUEST, seq)


# The fields sockdiff's own requests set (sockets.inet_request and unix_request).
_INET_REQUEST_TCP4 = {"sdiag_family": 2, "sdiag_protocol": 6, "idiag_states": sockets.INET_STATES}
_UNIX_REQUEST = {
    "sdiag_family": 1,
    "udiag_states": sockets.UNIX_STATES,
    "udiag_show": sockets.UDIAG_SHOW_NAME
    | sockets.UDIAG_SHOW_PEER
    | sockets.UDIAG_SHOW_RQLEN
    | sockets.UDIAG_SHOW_UID,
}


def _encoded(message_class: type, fields: dict[str, int], seq: int) -> bytes:
    request = message_class()
    request["header"]["type"] = sockets.SOCK_DIAG_BY_FAMILY
    request["header"]["flags"] = 0x301
    request["header"]["sequence_number"] = seq
    for name, value in fields.items():
        request[name] = value
    request.encode()
    return bytes(request.data)

"""The parsers on captured bytes: /proc/net files and netlink replies recorded from the zoo.

``fixtures/capture.py`` recorded them on this machine with the zoo running;
``expected.json`` is the zoo's own account of what it opened.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
import sys
from typing import Any

import pytest

from sockdiff.backends.netlink import framing
from sockdiff.backends.netlink import sockets as netlink
from sockdiff.backends.proc import sockets as procfs
from sockdiff.model import Endpoint, Socket, inet
from tests.helpers.captured import EXPECTED, FIXTURES, OWNERS
from tests.helpers.expect import differences, locate


def owners_of(inode: int) -> list[dict[str, Any]]:
    return [{"pid": inode, "name": f"owner-of-{inode}", "fd": 3}] if inode else []


FILES = {"tcp": ("tcp", "tcp6"), "udp": ("udp", "udp6"), "raw": ("raw", "raw6"), "unix": ("unix",)}


def proc_sockets() -> list[Socket]:
    sockets: list[Socket] = []
    for proto, names in FILES.items():
        for name in names:
            data = (FIXTURES / "proc" / name).read_bytes()
            if proto == "unix":
                sockets += procfs.parse_unix(data, OWNERS)
            else:
                family = "inet6" if name.endswith("6") else "inet"
                sockets += procfs.parse_inet(data, proto, family, OWNERS)
    return sockets


def recorded(name: str) -> framing.Dump:
    data = (FIXTURES / "netlink" / f"{name}.bin").read_bytes()
    return framing.Dump([(data, len(data))])


def netlink_sockets() -> list[Socket]:
    seen: set[int] = set()
    sockets: list[Socket] = []
    for proto in ("tcp", "udp"):
        for family in ("4", "6"):
            sockets += netlink.decode_inet(recorded(f"{proto}{family}"), proto, OWNERS, seen)
    return sockets + netlink.decode_unix(recorded("unix"), OWNERS, seen)


def check(sockets: list[Socket], expected: dict[str, Any], *, knows_unix_peers: bool) -> None:
    found = locate(sockets, expected)
    assert len(found) == 1, (expected, found)
    problems = differences(
        found[0], expected, knows_unix_peers=knows_unix_peers, processes=owners_of(expected["inode"])
    )
    assert not problems, problems


def test_proc_parsers_read_every_socket_exactly() -> None:
    sockets = proc_sockets()
    for expected in EXPECTED:
        check(sockets, expected, knows_unix_peers=False)
    assert len(sockets) == len(EXPECTED)


def test_netlink_decoder_reads_every_socket_exactly() -> None:
    sockets = netlink_sockets()
    inet_or_unix = [e for e in EXPECTED if e["proto"] != "raw"]
    for expected in inet_or_unix:
        check(sockets, expected, knows_unix_peers=True)
    assert len(sockets) == len(inet_or_unix)


def test_port_table_is_ntohs() -> None:
    # The pure-Python decoder reads ports through this table, built from bytes.
    assert list(netlink._PORTS) == [socket.ntohs(port) for port in range(65536)]


def test_both_decoders_agree_on_awkward_unix_names() -> None:
    names = {e["local"]["path"] for e in EXPECTED if e["name"].startswith("awkward_")}
    assert any("\n" in n for n in names) and any("\\xe9" in n for n in names)
    assert "@odd@name" in names and "@\\xff\\xfe" in names
    for sockets in (proc_sockets(), netlink_sockets()):
        shown = {s.local.path for s in sockets if s.proto == "unix"}
        assert names <= shown


def test_raw_dump_ends_with_an_error_in_nlmsg_done() -> None:
    """This kernel has no raw_diag: the error is in NLMSG_DONE, never "zero sockets"."""
    for name in ("raw4", "raw6"):
        with pytest.raises(framing.DumpFailed) as caught:
            list(recorded(name))
        assert caught.value.code == errno.ENOENT


def _message(kind: int, flags: int, payload: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(payload), kind, flags, 1, 0) + payload


def test_nlmsg_error_raises() -> None:
    data = _message(framing.NLMSG_ERROR, 0, struct.pack("=i", -errno.EACCES) + bytes(16))
    with pytest.raises(framing.DumpFailed) as caught:
        list(framing.Dump([(data, len(data))]))
    assert caught.value.code == errno.EACCES


def test_dump_intr_is_reported() -> None:
    data = bytearray((FIXTURES / "netlink" / "tcp4.bin").read_bytes())
    struct.pack_into("=H", data, 6, struct.unpack_from("=H", data, 6)[0] | framing.NLM_F_DUMP_INTR)
    dump = framing.Dump([(data, len(data))])
    sockets = netlink.decode_inet(dump, "tcp", {}, set())
    assert dump.interrupted and sockets


def test_truncated_or_unterminated_replies_are_errors() -> None:
    data = (FIXTURES / "netlink" / "tcp4.bin").read_bytes()
    with pytest.raises(framing.DumpFailed) as caught:
        list(framing.Dump([(data[:50], 50)]))
    assert caught.value.code == errno.EBADMSG
    without_done = data[: data.rindex(struct.pack("=HH", framing.NLMSG_DONE, 2)) - 4]
    with pytest.raises(framing.DumpFailed) as caught:
        list(framing.Dump([(without_done, len(without_done))]))
    assert caught.value.code == errno.ENODATA


def test_repeated_sockets_are_dropped() -> None:
    data = (FIXTURES / "netlink" / "tcp4.bin").read_bytes()
    body = data[:-20]  # without NLMSG_DONE
    twice = body + body + data[-20:]
    once = netlink.decode_inet(framing.Dump([(data, len(data))]), "tcp", {}, set())
    assert len(once) > 1
    assert netlink.decode_inet(framing.Dump([(twice, len(twice))]), "tcp", {}, set()) == once
    proc = (FIXTURES / "proc" / "tcp").read_bytes()
    rows = proc.splitlines(keepends=True)
    proc_once = procfs.parse_inet(proc, "tcp", "inet", {})
    assert len(proc_once) == len(rows) - 1 > 1
    assert procfs.parse_inet(proc + b"".join(rows[1:]), "tcp", "inet", {}) == proc_once


@pytest.mark.skipif(sys.byteorder != "little", reason="the captured words are little-endian")
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"0100007F:0016", inet("127.0.0.1", 22)),
        (b"00000000000000000000000001000000:01BB", inet("::1", 443)),
        (b"0000000000000000FFFF00000100007F:1F90", inet("::ffff:127.0.0.1", 8080)),
        (b"000080FE00000000000000000100000A:0035", inet("fe80::a00:1", 53)),
        (b"000080FE000000000000000001000000:0035", inet("fe80::1", 53)),
        (b"00000000000000000000000000000000:0000", inet("::", 0)),
    ],
)
def test_decode_address(text: bytes, expected: Endpoint) -> None:
    assert procfs.decode_address(text) == expected


def test_repeated_unix_sockets_are_dropped() -> None:
    data = (FIXTURES / "netlink" / "unix.bin").read_bytes()
    twice = data[:-20] + data
    once = netlink.decode_unix(framing.Dump([(data, len(data))]), {}, set())
    assert len(once) > 1
    assert netlink.decode_unix(framing.Dump([(twice, len(twice))]), {}, set()) == once
    proc = (FIXTURES / "proc" / "unix").read_bytes()
    rows = proc.splitlines(keepends=True)
    proc_once = procfs.parse_unix(proc, {})
    assert len(proc_once) > 1
    assert procfs.parse_unix(proc + b"".join(rows[1:]), {}) == proc_once


def _interrupted(data: bytes) -> bytes:
    flagged = bytearray(data)
    struct.pack_into("=H", flagged, 6, struct.unpack_from("=H", flagged, 6)[0] | framing.NLM_F_DUMP_INTR)
    return bytes(flagged)


@pytest.mark.parametrize("both_families", [True, False], ids=["one-dump", "a-dump-a-family"])
@pytest.mark.parametrize("interrupted_attempts", [0, 1, 2, 3])
def test_interrupted_dumps_are_redone(
    interrupted_attempts: int, both_families: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dump the kernel flags NLM_F_DUMP_INTR is asked for again, up to three times in all.

    The kernel is played by the other end of a SOCK_SEQPACKET pair (one reply a
    datagram, as netlink delivers them), loaded with recorded replies: for TCP,
    one dump of both families (TCPDIAG_GETSOCK; here answered with the IPv4
    replies alone), or, on a kernel that refuses it, one dump a family.
    """
    monkeypatch.setattr(netlink, "_TCP_BOTH_FAMILIES", [both_families])
    tcp4 = (FIXTURES / "netlink" / "tcp4.bin").read_bytes()
    tcp6 = (FIXTURES / "netlink" / "tcp6.bin").read_bytes()
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours, kernel:
        for attempt in range(1, framing.ATTEMPTS + 1):
            kernel.send(_interrupted(tcp4) if attempt <= interrupted_attempts else tcp4)
            if not both_families:
                kernel.send(tcp6)
        sockets = netlink._dump_protocol(ours, "tcp", {})
        kernel.setblocking(False)
        requests = []
        with contextlib.suppress(BlockingIOError):
            while True:
                requests.append(kernel.recv(4096))
    attempts = min(interrupted_attempts + 1, framing.ATTEMPTS)
    per_attempt = (netlink.TCPDIAG_GETSOCK,) if both_families else (netlink.SOCK_DIAG_BY_FAMILY,) * 2
    assert [struct.unpack_from("=HxxI", r, 4) for r in requests] == [
        (kind, n) for n in range(1, attempts + 1) for kind in per_attempt
    ]
    seen: set[int] = set()
    clean = [netlink.decode_inet(recorded(name), "tcp", {}, seen) for name in ("tcp4", "tcp6")]
    assert sockets == (clean[0] if both_families else clean[0] + clean[1])


def _inet6_listener_message() -> tuple[bytes, list[tuple[int, bytes]]]:
    """The zoo's IPv6 listener as the kernel sent it: header and inet_diag_msg, and its attributes."""
    data = (FIXTURES / "netlink" / "tcp6.bin").read_bytes()
    offset = 0
    while True:
        length, kind = struct.unpack_from("=IH", data, offset)
        assert kind != framing.NLMSG_DONE, "no IPv6 listener in the fixture"
        if data[offset + 17] == 10:  # TCP_LISTEN
            message = data[offset : offset + length]
            break
        offset += (length + 3) & ~3
    attributes, position = [], 16 + 72
    while position + 4 <= len(message):
        size, kind = struct.unpack_from("=HH", message, position)
        attributes.append((kind, message[position + 4 : position + size]))
        position += (size + 3) & ~3
    return message[: 16 + 72], attributes


def _rebuilt(head: bytes, attributes: list[tuple[int, bytes]]) -> framing.Dump:
    body = b"".join(
        struct.pack("=HH", 4 + len(payload), kind) + payload + bytes(-len(payload) % 4)
        for kind, payload in attributes
    )
    message = struct.pack("=I", len(head) + len(body)) + head[4:] + body
    done = struct.pack("=IHHIIi", 20, framing.NLMSG_DONE, 2, 1, 0, 0)
    return framing.Dump([(message + done, len(message) + len(done))])


def test_v6only_is_found_wherever_the_attribute_is() -> None:
    """INET_DIAG_SKV6ONLY where the kernel puts it, after other attributes, or absent (None)."""
    head, attributes = _inet6_listener_message()
    kinds = [kind for kind, _ in attributes]
    assert netlink.INET_DIAG_SKV6ONLY in kinds, kinds
    v6only = dict(attributes)[netlink.INET_DIAG_SKV6ONLY]
    others = [(kind, payload) for kind, payload in attributes if kind != netlink.INET_DIAG_SKV6ONLY]
    mark = (15, struct.pack("=I", 7))  # INET_DIAG_MARK, a u32 the kernel sends to a privileged reader
    for layout, want in (
        (attributes, True),
        ([*others, mark, (netlink.INET_DIAG_SKV6ONLY, v6only)], True),
        ([mark, (netlink.INET_DIAG_SKV6ONLY, b"\0"), *others], False),
        (others, None),
    ):
        (sock,) = netlink.decode_inet(_rebuilt(head, layout), "tcp", {}, set(), {})
        assert sock.v6only is want, layout


def test_interface_names_as_ss_writes_them() -> None:
    """A device index named in this namespace, once; an index with no device left is ``ifN``, as in ss."""
    names = netlink.InterfaceNames()
    index, name = socket.if_nameindex()[0]
    assert names[index] == name and names == {index: name}
    gone = max(i for i, _ in socket.if_nameindex()) + 1000
    assert names[gone] == f"if{gone}"

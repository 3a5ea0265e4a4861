"""ss's layouts: its socket table (``show``) and ``ss -s``'s summary (``show -s``).

The table lays its columns out as ss does (misc/ss.c); the summary counts the
sockets listed, in ss -s's layout, and says where ss's own figures differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..model import Socket, netns_of
from .notation import endpoint_columns, escape, netid, netns_word, process_text

__all__ = ["details_text", "socket_table", "sockets_summary"]


def details_text(sock: Socket) -> str:
    """What ``ss -e`` adds that a record holds: ``uid:1000 ino:4242 v6only:1``.

    As in ss, uid 0 is not written (nor an unknown one), nor the inode of a
    UNIX socket, which its Local column already shows.
    """
    parts = []
    if sock.uid:
        parts.append(f"uid:{sock.uid}")
    if sock.proto != "unix":
        parts.append(f"ino:{sock.inode}")
    if sock.v6only is not None:
        parts.append(f"v6only:{int(sock.v6only)}")
    return " ".join(parts)


def _queue(value: int | None) -> str:
    return "-" if value is None else escape(str(value), backslash=False)


# ss's columns (misc/ss.c, ``columns``): the header, whether the cells are
# right-aligned, and the delimiter before them. An address column ends in its
# ":" (or " " for UNIX) and the port column follows it without a gap.
_HEADER = (
    ("Netid", False, ""),
    ("State", False, " "),
    ("Recv-Q", False, " "),
    ("Send-Q", False, " "),
    ("Local Address:", True, " "),
    ("Port", False, ""),
    ("Peer Address:", True, " "),
    ("Port", False, ""),
)


def socket_table(
    sockets: Sequence[Socket],
    processes: bool = False,
    resolve: bool = False,
    header: bool = True,
    extended: bool = False,
) -> str:
    """An ss-like table, laid out as ss lays its columns out, sized to their contents.

    ``extended`` adds ss -e's details (:func:`details_text`) after the process
    column; ``header=False`` leaves the header line out (ss -H).
    """
    columns = list(_HEADER)
    if processes:
        columns.append(("Process", False, " "))
    if extended:
        columns.append(("", False, " "))
    rows = [[name for name, _, _ in columns]] if header else []
    for sock in sockets:
        row = [
            netid(sock),
            sock.state,
            _queue(sock.recv_q),
            _queue(sock.send_q),
            *endpoint_columns(sock, sock.local, True, resolve),
            *endpoint_columns(sock, sock.remote, False, resolve),
        ]
        if processes:
            row.append(process_text(sock))
        if extended:
            row.append(details_text(sock))
        rows.append(row)
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = []
    for row in rows:
        cells = []
        for (_, right, delimiter), cell, width in zip(columns, row, widths, strict=True):
            cells.append(delimiter + (cell.rjust(width) if right else cell.ljust(width)))
        # Every cell went through escape() in its notation function; this is the
        # last guard for one that did not, so that one socket stays one line.
        lines.append(escape("".join(cells).rstrip(), backslash=False))
    return "\n".join(lines)


# Orphans: full TCP sockets their process closed (inode 0), still finishing. A
# FIN_WAIT2 socket with inode 0 is not one: the kernel turns an orphan that
# reaches FIN_WAIT2 into a timewait sock (tcp_rcv_state_process, tcp_time_wait
# with substate TCP_FIN_WAIT2, whenever tcp_fin_timeout is at most TIME_WAIT's
# 60 s, the default), which ss lists as FIN-WAIT-2 and sockstat counts in ``tw``.
_ORPHAN_STATES = frozenset({"FIN_WAIT1", "CLOSING", "LAST_ACK"})
# The kernel's Tcp CurrEstab (RFC 1213's tcpCurrEstab, Linux 6.10 on): ESTABLISHED or CLOSE_WAIT.
_CURRENT_ESTABLISHED = frozenset({"ESTABLISHED", "CLOSE_WAIT"})


def _timewait(sock: Socket) -> bool:
    """An inet_timewait_sock: TIME_WAIT, or FIN_WAIT2 without an inode (its substate)."""
    return sock.state == "TIME_WAIT" or (sock.state == "FIN_WAIT2" and sock.inode == 0)


def _full(sock: Socket) -> bool:
    """A full socket, what the kernel's ``sockets: used`` and TCP ``inuse`` count (no mini-socket)."""
    return sock.proto != "tcp" or not (_timewait(sock) or sock.state == "SYN_RECV")


def sockets_summary(
    sockets: Sequence[Socket],
    kernel: Mapping[str, int] | None = None,
    labels: Mapping[int, str] | None = None,
) -> str:
    """``ss -s``'s layout, counted from ``sockets``, then what ss -s would say and why it differs.

    Total counts full sockets, as the kernel's ``sockets: used`` does: not the
    timewait and SYN_RECV mini-sockets (TIME_WAIT, and FIN_WAIT2 without an
    inode: a host with 390 TIME_WAIT sockets has 390 fewer than it lists). As
    in ss, the Transport table's TCP figure leaves them out too; "timewait"
    counts both kinds, as sockstat's ``tw``; "estab" is the kernel's
    CurrEstab (ESTABLISHED and CLOSE_WAIT); "orphaned" are TCP sockets closed
    by their process and still finishing (inode 0 in FIN_WAIT1, CLOSING or
    LAST_ACK: a connection waiting to be accepted has no inode yet, and is not
    one). ss reads /proc/net/sockstat instead,
    whose Total also counts sockets no table lists (netlink, packet, never
    bound) and whose TCP ``alloc`` and ``orphan``, behind ss's TCP total, closed
    and orphaned, count the TCP sockets of every network namespace. ``kernel``
    (:func:`sockdiff.backends.proc.sockets.read_counters`, for a live source) gives
    ss's own figures on a line of their own. The FRAG line is left out.

    ``labels`` (a snapshot of every namespace: inode -> label, in the
    snapshot's order): the counts above are every namespace's, and a table
    after them counts each namespace's sockets (ss's figures are one
    namespace's: pass no ``kernel``).
    """
    tcp = [s for s in sockets if s.proto == "tcp"]
    timewait = sum(1 for s in tcp if _timewait(s))
    orphaned = sum(1 for s in tcp if s.inode == 0 and s.state in _ORPHAN_STATES)
    established = sum(1 for s in tcp if s.state in _CURRENT_ESTABLISHED)
    full = [s for s in sockets if _full(s)]
    lines = [
        f"Total: {len(full)}",
        f"TCP:   {len(tcp)} (estab {established},"
        f" closed {sum(1 for s in tcp if s.state == 'CLOSE')}, orphaned {orphaned}, timewait {timewait})",
        "",
        "Transport Total     IP        IPv6",
    ]
    rows: dict[str, tuple[int, int]] = {}
    for proto in ("raw", "udp", "tcp"):
        counted = [s for s in full if s.proto == proto]
        rows[proto.upper()] = (
            sum(1 for s in counted if s.family == "inet"),
            sum(1 for s in counted if s.family == "inet6"),
        )
    rows["INET"] = (sum(v4 for v4, _ in rows.values()), sum(v6 for _, v6 in rows.values()))
    for name, (v4, v6) in rows.items():
        lines.append(f"{name}\t  {v4 + v6:<9} {v4:<9} {v6:<9}".rstrip())
    lines += ["", *_ss_summary_note(kernel)]
    if labels is not None:
        lines += ["", *_per_namespace(full, tcp, labels)]
    return "\n".join(lines) + "\n"


def _per_namespace(full: Sequence[Socket], tcp: Sequence[Socket], labels: Mapping[int, str]) -> list[str]:
    """Each namespace's Total (full sockets), TCP (as the TCP line counts), UDP, RAW and UNIX."""
    counts: dict[int | None, list[int]] = {inode: [0, 0, 0, 0, 0] for inode in labels}
    for sock in full:
        row = counts.setdefault(netns_of(sock), [0, 0, 0, 0, 0])
        row[0] += 1
        if sock.proto != "tcp":
            row[("udp", "raw", "unix").index(sock.proto) + 2] += 1
    for sock in tcp:
        counts.setdefault(netns_of(sock), [0, 0, 0, 0, 0])[1] += 1
    names = [netns_word(labels[inode]) if inode is not None else "-" for inode in counts]
    width = max(len("Netns"), *map(len, names))
    rows = [f"{'Netns':<{width}} Total     TCP       UDP       RAW       UNIX"]
    for name, row in zip(names, counts.values(), strict=True):
        rows.append(f"{name:<{width}} " + " ".join(f"{number:<9}" for number in row).rstrip())
    return rows


_SS_COUNTERS = (
    "sockets used",
    "TCP inuse",
    "TCP orphan",
    "TCP tw",
    "TCP alloc",
    "TCP6 inuse",
    "Tcp CurrEstab",
)


def _ss_summary_note(kernel: Mapping[str, int] | None) -> list[str]:
    """How ss -s's Total and TCP lines differ from the counts above; ss's own, where known."""
    lines = [
        "Counted from the sockets listed. ss -s's Total also counts sockets no table lists",
        "(netlink, packet, never bound); its TCP total, closed and orphaned, from",
        "/proc/net/sockstat's alloc and orphan, count every network namespace's TCP sockets.",
    ]
    if kernel is None or not all(name in kernel for name in _SS_COUNTERS):
        return lines
    used, inuse, orphan, tw, alloc, inuse6, estab = (kernel[name] for name in _SS_COUNTERS)
    # iproute2's print_summary, figure for figure.
    closed = alloc - (inuse + inuse6 - tw)
    return [
        *lines,
        f"ss -s says: Total: {used}, TCP: {alloc + tw} (estab {estab}, closed {closed},"
        f" orphaned {orphan}, timewait {tw})",
    ]

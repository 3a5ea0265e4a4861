"""Filter expressions: the grammar, every keyword, and the errors."""

from __future__ import annotations

import socket

import msgspec
import pytest

import sockdiff.filter
from sockdiff.errors import BadFilter, UsageError
from sockdiff.filter import compile_filter, compile_filters, filter_keywords
from sockdiff.model import FamilyName, Process, ProtoName, Socket, TypeName, unix_name, unix_peer
from sockdiff.model import inet as inet_endpoint

INET_STATES = [
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
    "UNKNOWN",
]
UNIX_STATES = ["FREE", "LISTENING", "CONNECTING", "CONNECTED", "DISCONNECTING", "UNCONNECTED", "UNKNOWN"]


def inet(
    local: tuple[str, int] = ("10.0.0.5", 8080),
    remote: tuple[str, int] | None = ("192.168.1.9", 443),
    *,
    proto: ProtoName = "tcp",
    family: FamilyName | None = None,
    state: str = "ESTABLISHED",
    uid: int | None = 1000,
    processes: tuple[Process, ...] = (),
) -> Socket:
    """An IP socket; the family follows the local address unless given."""
    if family is None:
        family = "inet6" if ":" in local[0] else "inet"
    return Socket(
        proto,
        family,
        "dgram" if proto == "udp" else "raw" if proto == "raw" else "stream",
        state,
        inet_endpoint(*local),
        None if remote is None else inet_endpoint(*remote),
        4242,
        uid,
        0,
        0,
        processes,
    )


def unix(
    path: str | None = "/run/app.sock",
    *,
    state: str = "CONNECTED",
    sock_type: TypeName = "stream",
    uid: int | None = 0,
    processes: tuple[Process, ...] = (),
) -> Socket:
    return Socket(
        "unix", "unix", sock_type, state, unix_name(path), unix_peer(77), 4343, uid, 0, 0, processes
    )


def matches(expression: str, sock: Socket) -> bool:
    return compile_filter(expression)(sock)


# --- sport / dport ---------------------------------------------------------------------------

PORT_CASES = [
    # (expression, expected for a socket 10.0.0.5:8080 -> 192.168.1.9:443)
    ("sport = :8080", True),
    ("sport == :8080", True),
    ("sport eq :8080", True),
    ("sport EQ :8080", True),
    ("sport = 8080", True),
    ("sport :8080", True),
    ("sport 8080", True),
    ("sport=:8080", True),
    ("sport = :8081", False),
    ("sport != :8080", False),
    ("sport ne :8080", False),
    ("sport != :22", True),
    ("sport neq :22", True),
    ("sport < :8080", False),
    ("sport < :8081", True),
    ("sport lt :8081", True),
    ("sport > :8080", False),
    ("sport > :8079", True),
    ("sport gt :8079", True),
    ("sport <= :8080", True),
    ("sport <= :8079", False),
    ("sport le :8080", True),
    ("sport leq :8080", True),
    ("sport >= :8080", True),
    ("sport >= :8081", False),
    ("sport ge :8080", True),
    ("sport geq :8081", False),
    ("dport = :443", True),
    ("dport = :8080", False),
    ("dport != :443", False),
    ("dport < :1024", True),
    ("dport >= :1024", False),
    ("dport<=:443", True),
    ("dport>:442", True),
]


@pytest.mark.parametrize(("expression", "expected"), PORT_CASES)
def test_port_operators(expression: str, expected: bool) -> None:
    assert matches(expression, inet()) is expected


@pytest.mark.parametrize(
    ("expression", "port", "expected"),
    [
        ("sport = :0", 0, True),
        ("sport = :65535", 65535, True),
        ("sport >= :65535", 65535, True),
        ("sport > :65535", 65535, False),
        ("sport < :0", 0, False),
        ("sport <= :0", 0, True),
        ("sport = :00022", 22, True),
    ],
)
def test_port_edges(expression: str, port: int, expected: bool) -> None:
    assert matches(expression, inet(local=("10.0.0.5", port))) is expected


def test_ports_of_sockets_without_ports() -> None:
    sock = unix()
    # Equality and orderings need a port...
    assert matches("sport = :0", sock) is False
    assert matches("sport < :1024", sock) is False
    assert matches("dport >= :0", sock) is False
    # ...while != is `not =`, as ss compiles it.
    assert matches("sport != :22", sock) is True
    assert matches("not sport = :22", sock) is True
    # A socket without a remote endpoint at all.
    assert matches("dport = :0", inet(remote=None)) is False


def test_raw_socket_port_is_the_protocol_number() -> None:
    icmp = inet(local=("0.0.0.0", 1), remote=("0.0.0.0", 0), proto="raw", state="CLOSE")
    assert matches("sport = :1", icmp) is True
    assert matches("sport = :58", icmp) is False


def test_service_names() -> None:
    try:
        ssh = socket.getservbyname("ssh")
    except OSError:
        pytest.skip("no services database")
    assert matches("sport = :ssh", inet(local=("10.0.0.5", ssh))) is True
    assert matches("sport = ssh", inet(local=("10.0.0.5", ssh))) is True
    assert matches("src *:ssh", inet(local=("10.0.0.5", ssh))) is True
    assert matches("sport = :ssh", inet(local=("10.0.0.5", ssh + 1))) is False


# --- src / dst -------------------------------------------------------------------------------

V4 = inet(local=("10.0.0.5", 8080), remote=("192.168.1.9", 443))
V6 = inet(local=("2001:db8::5", 8080), remote=("::1", 443))
MAPPED = inet(local=("::ffff:10.1.2.3", 80), remote=("::ffff:192.168.1.9", 5555))
LINK_LOCAL = inet(local=("fe80::1", 22), remote=("fe80::2", 40000))

HOST_CASES = [
    ("src 10.0.0.5", V4, True),
    ("src = 10.0.0.5", V4, True),
    ("src == 10.0.0.5", V4, True),
    ("src eq 10.0.0.5", V4, True),
    ("src 10.0.0.6", V4, False),
    ("src != 10.0.0.6", V4, True),
    ("src ne 10.0.0.5", V4, False),
    ("src 10.0.0.0/8", V4, True),
    ("src 10.0.0.1/8", V4, True),  # host bits are ignored, as ss does
    ("src 10.0.0.0/30", V4, False),
    ("src 10.0.0.4/30", V4, True),
    ("src 0.0.0.0/0", V4, True),
    ("src 10.0.0.5:8080", V4, True),
    ("src 10.0.0.5:8081", V4, False),
    ("src 10.0.0.0/8:8080", V4, True),
    ("src *:8080", V4, True),
    ("src *:80", V4, False),
    ("src :8080", V4, True),
    ("src *", V4, True),
    ("src 10.0.0.5:*", V4, True),
    ("dst 192.168.1.9", V4, True),
    ("dst 192.168.0.0/16", V4, True),
    ("dst 10.0.0.5", V4, False),
    ("dst 192.168.1.9:443", V4, True),
    ("dst *:443", V4, True),
    ("dst [192.168.1.9]:443", V4, True),
    # IPv6, bare and bracketed, with and without a port.
    ("src 2001:db8::5", V6, True),
    ("src [2001:db8::5]", V6, True),
    ("src [2001:db8::5]:8080", V6, True),
    ("src [2001:db8::5]:8081", V6, False),
    ("src 2001:db8::/32", V6, True),
    ("src [2001:db8::]/32", V6, True),
    ("src [2001:db8::]/32:8080", V6, True),
    ("src [2001:db8::/32]:8080", V6, True),
    ("src 2001:db9::/32", V6, False),
    ("src ::/0", V6, True),
    ("dst ::1", V6, True),
    ("dst [::1]:443", V6, True),
    ("dst [::1]:444", V6, False),
    ("dst ::2", V6, False),
    ("src 2001:db8::5:8080", V6, False),  # unbracketed, that is one address
    ("src fe80::/10", LINK_LOCAL, True),
    ("src fe80::/10", V6, False),
    ("src [fe80::1%lo]", LINK_LOCAL, True),
    ("src fe80::1%eth0", LINK_LOCAL, True),
    ("src [fe80::1%lo]:22", LINK_LOCAL, True),
    ("src fe80::1%lo/64", LINK_LOCAL, True),
    # The families do not mix...
    ("src 0.0.0.0/0", V6, False),
    ("src ::/0", V4, False),
    # ...except through IPv4-mapped addresses, both ways.
    ("src 10.0.0.0/8", MAPPED, True),
    ("src 10.1.2.3", MAPPED, True),
    ("src 10.1.2.3:80", MAPPED, True),
    ("src 11.0.0.0/8", MAPPED, False),
    ("dst 192.168.1.9", MAPPED, True),
    ("src ::ffff:10.1.2.3", MAPPED, True),
    ("src ::ffff:10.0.0.0/104", V4, True),
    ("src ::ffff:10.0.0.5", V4, True),
    ("src ::ffff:11.0.0.0/104", V4, False),
    ("src ::/0", MAPPED, True),
]


@pytest.mark.parametrize(("expression", "sock", "expected"), HOST_CASES)
def test_host_conditions(expression: str, sock: Socket, expected: bool) -> None:
    assert matches(expression, sock) is expected


@pytest.mark.parametrize("expression", ["src *", "src 0.0.0.0/0", "dst *:443", "src ::/0", "dst :0"])
def test_hosts_never_match_unix_sockets(expression: str) -> None:
    assert matches(expression, unix()) is False
    assert matches(expression, unix(path=None)) is False


def test_dst_of_a_listener_is_the_wildcard() -> None:
    listener = inet(local=("0.0.0.0", 22), remote=("0.0.0.0", 0), state="LISTEN")
    assert matches("dst 0.0.0.0", listener) is True
    assert matches("dst *:0", listener) is True
    assert matches("dst 127.0.0.1", listener) is False


def test_dst_without_remote_endpoint() -> None:
    assert matches("dst *", inet(remote=None)) is False


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The addresses the filter parses, in order (its cache lets some through)."""
    calls: list[str] = []
    real = sockdiff.filter._address_in

    def counting(address: str, networks: tuple[sockdiff.filter._Network, ...]) -> bool:
        calls.append(address)
        return real(address, networks)

    monkeypatch.setattr(sockdiff.filter, "_address_in", counting)
    return calls


def test_address_cache_is_correct_and_each_address_parsed_once(parsed: list[str]) -> None:
    test = compile_filter("src 10.0.0.0/8")
    socks = [inet(local=(address, 80)) for address in ("10.1.1.1", "11.1.1.1", "10.2.2.2")] * 1000
    assert [test(sock) for sock in socks] == [True, False, True] * 1000
    assert sorted(parsed) == ["10.1.1.1", "10.2.2.2", "11.1.1.1"]


def test_address_cache_is_bounded(parsed: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sockdiff.filter, "_ADDRESS_CACHE_SIZE", 2)
    test = compile_filter("src 10.0.0.0/8")
    addresses = ["10.0.0.1", "11.0.0.1", "10.0.0.2"] * 3
    assert [test(inet(local=(a, 80))) for a in addresses] == [True, False, True] * 3
    # Three addresses do not fit in a cache of two: some are parsed again.
    assert len(parsed) > 3


# --- state -----------------------------------------------------------------------------------

ALL_STATES = [inet(state=name) for name in INET_STATES] + [unix(state=name) for name in UNIX_STATES]


def states_matching(expression: str) -> set[tuple[str, str]]:
    test = compile_filter(expression)
    return {(sock.proto, sock.state) for sock in ALL_STATES if test(sock)}


def tcp_states(*names: str) -> set[tuple[str, str]]:
    return {("tcp", name) for name in names}


def unix_states(*names: str) -> set[tuple[str, str]]:
    return {("unix", name) for name in names}


STATE_CASES = [
    ("established", tcp_states("ESTABLISHED") | unix_states("CONNECTED")),
    ("syn-sent", tcp_states("SYN_SENT") | unix_states("CONNECTING")),
    ("syn-recv", tcp_states("SYN_RECV")),
    ("syn-rcv", tcp_states("SYN_RECV")),
    ("fin-wait-1", tcp_states("FIN_WAIT1")),
    ("fin-wait-2", tcp_states("FIN_WAIT2")),
    ("time-wait", tcp_states("TIME_WAIT")),
    ("close", tcp_states("CLOSE") | unix_states("UNCONNECTED")),
    ("closed", tcp_states("CLOSE") | unix_states("UNCONNECTED")),
    ("unconnected", tcp_states("CLOSE") | unix_states("UNCONNECTED")),
    ("close-wait", tcp_states("CLOSE_WAIT")),
    ("last-ack", tcp_states("LAST_ACK")),
    ("listening", tcp_states("LISTEN") | unix_states("LISTENING")),
    ("listen", tcp_states("LISTEN") | unix_states("LISTENING")),
    ("closing", tcp_states("CLOSING")),
    ("connecting", tcp_states("SYN_SENT") | unix_states("CONNECTING")),
    ("disconnecting", unix_states("DISCONNECTING")),
    ("free", unix_states("FREE")),
    ("unknown", tcp_states("UNKNOWN") | unix_states("UNKNOWN")),
    # The record's own spellings, and case and -/_ folding.
    ("ESTABLISHED", tcp_states("ESTABLISHED") | unix_states("CONNECTED")),
    ("FIN_WAIT1", tcp_states("FIN_WAIT1")),
    ("FIN_WAIT2", tcp_states("FIN_WAIT2")),
    ("fin_wait_1", tcp_states("FIN_WAIT1")),
    ("Time_Wait", tcp_states("TIME_WAIT")),
    ("SYN-RECV", tcp_states("SYN_RECV")),
    ("LISTENING", tcp_states("LISTEN") | unix_states("LISTENING")),
    ("UNCONNECTED", tcp_states("CLOSE") | unix_states("UNCONNECTED")),
    ("CLOSE_WAIT", tcp_states("CLOSE_WAIT")),
    ("LAST_ACK", tcp_states("LAST_ACK")),
    # ss's groups.
    ("all", tcp_states(*INET_STATES) | unix_states(*UNIX_STATES)),
    # connected: ss's SS_CONN, all but LISTEN, CLOSE, TIME_WAIT and SYN_RECV (and FREE, UNKNOWN).
    (
        "connected",
        tcp_states(*INET_STATES) - tcp_states("LISTEN", "CLOSE", "TIME_WAIT", "SYN_RECV", "UNKNOWN")
        | unix_states("CONNECTED", "CONNECTING", "DISCONNECTING"),
    ),
    # synchronized: connected less syn-sent and its UNIX counterpart.
    (
        "synchronized",
        tcp_states(*INET_STATES)
        - tcp_states("LISTEN", "CLOSE", "TIME_WAIT", "SYN_RECV", "UNKNOWN", "SYN_SENT")
        | unix_states("CONNECTED", "DISCONNECTING"),
    ),
    ("bucket", tcp_states("SYN_RECV", "TIME_WAIT")),
    (
        "big",
        (tcp_states(*INET_STATES) - tcp_states("SYN_RECV", "TIME_WAIT")) | unix_states(*UNIX_STATES),
    ),
]


@pytest.mark.parametrize(("word", "expected"), STATE_CASES)
def test_state_words(word: str, expected: set[tuple[str, str]]) -> None:
    assert states_matching(f"state {word}") == expected


def test_state_operators() -> None:
    assert states_matching("state = time-wait") == tcp_states("TIME_WAIT")
    assert states_matching("state == time-wait") == tcp_states("TIME_WAIT")
    assert states_matching("state != bucket") == states_matching("state big")
    assert states_matching("not state listening") == states_matching("state all") - states_matching(
        "state listen"
    )


def test_state_words_side_by_side_are_one_set_as_in_ss() -> None:
    """ss's main(): ``state`` words add to one set, ``exclude`` words take from it, in order."""
    listening, established = states_matching("state listening"), states_matching("state established")
    assert states_matching("state established state listening") == established | listening
    assert states_matching("state established and state listening") == set()  # an explicit "and" is both
    assert states_matching("exclude listening") == states_matching("state all") - listening
    assert states_matching("excl listening") == states_matching("state != listening")
    assert (
        states_matching("state connected exclude established")
        == states_matching("state connected") - established
    )
    assert states_matching("exclude listening state listening") == states_matching("state all")
    assert states_matching("state established state listening or state time-wait") == (
        established | listening | tcp_states("TIME_WAIT")
    )
    assert states_matching("not state established state listening") == (
        states_matching("state all") - established - listening
    )
    for expression in ("exclude listening", "state listening excl closed"):
        assert filter_keywords(expression) == {"state"}


def test_dev_is_the_bound_device() -> None:
    """ss's ``dev NAME``: the device a socket is bound to; unbound or unknown (None) is no device."""
    on_lo = msgspec.structs.replace(inet(), interface="lo")
    on_veth = msgspec.structs.replace(inet(), interface="veth0")
    unbound = inet()
    assert [matches("dev lo", s) for s in (on_lo, on_veth, unbound)] == [True, False, False]
    assert [matches("dev != lo", s) for s in (on_lo, on_veth, unbound)] == [False, True, True]
    assert [matches("dev = 'veth*'", s) for s in (on_lo, on_veth, unbound)] == [False, True, False]
    assert matches("dev lo", unix()) is False


def test_state_applies_to_udp_too() -> None:
    assert matches("state unconnected", inet(proto="udp", state="CLOSE", remote=("0.0.0.0", 0))) is True
    assert matches("state established", inet(proto="udp", state="CLOSE")) is False


# --- proto, family, process, pid, uid, path ----------------------------------------------------

NGINX = (Process(100, "nginx", 6), Process(101, "nginx: worker", 7))


@pytest.mark.parametrize(
    ("expression", "sock", "expected"),
    [
        ("proto tcp", inet(), True),
        ("proto = tcp", inet(), True),
        ("proto TCP", inet(), True),
        ("proto udp", inet(), False),
        ("proto udp", inet(proto="udp"), True),
        ("proto raw", inet(proto="raw"), True),
        ("proto unix", unix(), True),
        ("proto unix", inet(), False),
        ("proto != tcp", inet(), False),
        ("proto != tcp", unix(), True),
        ("family inet", V4, True),
        ("family inet", V6, False),
        ("family inet6", V6, True),
        ("family inet6", MAPPED, True),
        ("family inet", MAPPED, False),
        ("family unix", unix(), True),
        ("family unix", V4, False),
        ("family ne unix", V4, True),
        ("process nginx", inet(processes=NGINX), True),
        ("process = nginx", inet(processes=NGINX), True),
        ("process ngin", inet(processes=NGINX), False),
        ("process NGINX", inet(processes=NGINX), False),  # names are case-sensitive
        ("process 'nginx: worker'", inet(processes=NGINX), True),
        ('process "nginx: worker"', inet(processes=NGINX), True),
        ("process ngi*", inet(processes=NGINX), True),
        ("process *worker", inet(processes=NGINX), True),
        ("process ngin?", inet(processes=NGINX), True),
        ("process ngin?x", inet(processes=NGINX), False),
        ("process [mn]ginx", inet(processes=NGINX), True),
        ("process nginx", inet(), False),
        ("process *", inet(), False),
        ("process != nginx", inet(), True),
        ("process != nginx", inet(processes=NGINX), False),
        ("pid 100", inet(processes=NGINX), True),
        ("pid = 101", inet(processes=NGINX), True),
        ("pid 102", inet(processes=NGINX), False),
        ("pid > 100", inet(processes=NGINX), True),
        ("pid > 101", inet(processes=NGINX), False),
        ("pid < 100", inet(processes=NGINX), False),
        ("pid <= 100", inet(processes=NGINX), True),
        ("pid ge 101", inet(processes=NGINX), True),
        ("pid != 100", inet(processes=NGINX), False),
        ("pid != 100", inet(), True),
        ("pid >= 0", inet(), False),
        ("uid 1000", inet(uid=1000), True),
        ("uid = 0", inet(uid=1000), False),
        ("uid >= 1000", inet(uid=1000), True),
        ("uid > 1000", inet(uid=1000), False),
        ("uid < 1000", inet(uid=0), True),
        ("uid lt 1000", inet(uid=1000), False),
        ("uid != 0", inet(uid=1000), True),
        ("uid >= 0", inet(uid=None), False),
        ("uid = 0", inet(uid=None), False),
        ("path /run/app.sock", unix(), True),
        ("path = /run/app.sock", unix(), True),
        ("path /run/app", unix(), False),
        ("path /run/*.sock", unix(), True),
        ("path /run/*", unix("/run/sub/dir/x.sock"), True),  # `*` crosses '/'
        ("path /tmp/*", unix(), False),
        ("path @*", unix("@/tmp/.X11-unix/X0"), True),
        ("path @/tmp/.X11-unix/X0", unix("@/tmp/.X11-unix/X0"), True),
        ("path /tmp/*", unix("@/tmp/.X11-unix/X0"), False),
        ("path *", unix(None), False),
        ("path *", inet(), False),
        ("path '/run/my app/socket'", unix("/run/my app/socket"), True),
        ('path "/run/my app/*"', unix("/run/my app/socket"), True),
        ("path '/run/my app/socket'", unix("/run/my app/sock"), False),
        ("path '/run/a (1)'", unix("/run/a (1)"), True),
        ("path '/tmp/[!a]*'", unix("/tmp/b.sock"), True),
        ("path '/tmp/[!a]*'", unix("/tmp/a.sock"), False),
        ("path '/run/x=1|y&z<>'", unix("/run/x=1|y&z<>"), True),
    ],
)
def test_own_keywords(expression: str, sock: Socket, expected: bool) -> None:
    assert matches(expression, sock) is expected


def test_quoted_value_with_quote_inside() -> None:
    assert matches('path "/run/it\'s"', unix("/run/it's")) is True
    assert matches("process '\"q\"'", inet(processes=(Process(1, '"q"', 3),))) is True


def test_quoted_value_is_never_an_operator_or_keyword() -> None:
    assert matches("process 'eq'", inet(processes=(Process(1, "eq", 3),))) is True
    assert matches("process '!='", inet(processes=(Process(1, "!=", 3),))) is True
    assert matches("process 'and'", inet(processes=(Process(1, "and", 3),))) is True


def test_backslashes_are_literal_in_paths() -> None:
    # Records escape odd bytes as \xNN; a filter names them the same way.
    assert matches(r"path '/tmp/a\xff'", unix(r"/tmp/a\xff")) is True


# --- combinators and precedence ----------------------------------------------------------------

# Three conditions whose truth on SOCK is known: A true, B false, C false, T true.
SOCK = inet(state="ESTABLISHED", processes=(Process(1, "curl", 3),))
A = "proto tcp"  # true
B = "proto udp"  # false
C = "state listening"  # false
T = "process curl"  # true


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (f"{A}", True),
        (f"{B}", False),
        (f"{A} and {T}", True),
        (f"{A} and {B}", False),
        (f"{A} && {B}", False),
        (f"{A} & {T}", True),
        (f"{A} AND {T}", True),
        (f"{A} {T}", True),  # juxtaposition is `and`
        (f"{A} {B}", False),
        (f"{B} or {A}", True),
        (f"{B} || {A}", True),
        (f"{B} | {A}", True),
        (f"{B} OR {C}", False),
        (f"not {A}", False),
        (f"NOT {B}", True),
        (f"! {A}", False),
        (f"!{B}", True),
        (f"!({B})", True),
        (f"not not {A}", True),
        (f"! ! {B}", False),
        # and binds tighter than or: A or (B and C), not (A or B) and C.
        (f"{A} or {B} and {C}", True),
        (f"({A} or {B}) and {C}", False),
        (f"{B} and {C} or {A}", True),
        (f"{B} and ({C} or {A})", False),
        # ...juxtaposition too: (B C) or T, not B and (C or T).
        (f"{B} {C} or {T}", True),
        (f"{B} ({C} or {T})", False),
        # not binds tighter than and: (not B) and C, not not (B and C).
        (f"not {B} and {C}", False),
        (f"not ({B} and {C})", True),
        (f"! {B} {C}", False),
        # ...and tighter than or: (not A) or T, not not (A or T).
        (f"not {A} or {T}", True),
        (f"not ({A} or {T})", False),
        (f"(({A}))", True),
        (f"((({B}) or ({A})) and ({T}))", True),
        (f"({A})({B})", False),
        (f"{A} and not ({B} or {C}) and {T}", True),
    ],
)
def test_combinators(expression: str, expected: bool) -> None:
    assert matches(expression, SOCK) is expected


def test_ss_style_expression() -> None:
    test = compile_filter("state established ( dport = :22 or sport = :22 )")
    assert test(inet(local=("10.0.0.5", 22), remote=("10.0.0.9", 50000))) is True
    assert test(inet(local=("10.0.0.5", 50000), remote=("10.0.0.9", 22))) is True
    assert test(inet(local=("10.0.0.5", 22), remote=("10.0.0.9", 50000), state="LISTEN")) is False
    assert test(inet(local=("10.0.0.5", 80), remote=("10.0.0.9", 50000))) is False


def test_whitespace_is_free() -> None:
    assert matches("  \tsport>=:80&&(dport<:1024||!src 10.0.0.0/8)\n", V4) is True
    assert matches("sport>=:80&&(dport<:400||!src 10.0.0.0/8)", V4) is False


# --- compile_filters ----------------------------------------------------------------------------


def test_compile_filters_empty_is_none() -> None:
    assert compile_filters([]) is None
    assert compile_filters(()) is None


def test_compile_filters_is_any() -> None:
    test = compile_filters(["sport = :22", "proto unix"])
    assert test is not None
    assert test(inet(local=("10.0.0.5", 22))) is True
    assert test(unix()) is True
    assert test(inet()) is False


def test_compile_filters_single() -> None:
    test = compile_filters(["sport = :8080"])
    assert test is not None
    assert test(inet()) is True
    assert test(unix()) is False


def test_compile_filters_reports_bad_expression() -> None:
    with pytest.raises(BadFilter, match="unknown keyword 'bogus' at column 1"):
        compile_filters(["proto tcp", "bogus"])


# --- errors ---------------------------------------------------------------------------------------

BAD = [
    ("", "empty expression"),
    ("   ", "empty expression"),
    ("foo", "unknown keyword 'foo' at column 1"),
    ("sport = :22 foo", "unknown keyword 'foo' at column 13"),
    ("fwmark 0x10", "unknown keyword 'fwmark' at column 1"),
    ("dev", "expected a device name after 'dev' at column 1"),
    ("sport", "expected a port after 'sport' at column 1"),
    ("sport =", "expected a port after '=' at column 7"),
    ("sport = (", "unexpected '(' at column 9 (expected a port)"),
    ("sport = :99999", "bad port ':99999' at column 9"),
    ("sport = :65536", "bad port ':65536' at column 9"),
    ("dport < :-1", "bad port ':-1' at column 9"),
    ("sport = ::22", "bad port '::22' at column 9"),
    ("sport = :", "bad port ':' at column 9"),
    ("sport = :no-such-service-here", "bad port ':no-such-service-here' at column 9"),
    ("sport = :²", "bad port ':²' at column 9"),
    ("sport = 10.0.0.1:22", "bad port '10.0.0.1:22' at column 9"),
    ("src", "expected an address after 'src' at column 1"),
    ("dst =", "expected an address after '=' at column 5"),
    ("src 999.1.1.1", "bad address '999.1.1.1' at column 5"),
    ("src 10.0.0.0/33", "bad address '10.0.0.0/33' at column 5"),
    ("src localhost", "bad address 'localhost' at column 5"),
    ("src 10/8", "bad address '10/8' at column 5"),
    ("src [::1", "bad address '[::1' at column 5"),
    ("src [::1]x", "bad address '[::1]x' at column 5"),
    ("src []:80", "bad address '[]:80' at column 5"),
    ("src [*]:80", "bad address '[*]:80' at column 5"),
    ("src [::1]:", "bad address '[::1]:' at column 5"),
    ("src [::1]:99999", "bad address '[::1]:99999' at column 5"),
    ("src 10.0.0.1:http-nope", "bad address '10.0.0.1:http-nope' at column 5"),
    ("src :", "bad address ':' at column 5"),
    ("src 10.0.0.1%lo", "bad address '10.0.0.1%lo' at column 5"),
    ("src fe80::1%", "bad address 'fe80::1%' at column 5"),
    ("src < 10.0.0.1", "unexpected '<' at column 5 ('src' takes only = or !=)"),
    ("proto >= tcp", "unexpected '>=' at column 7 ('proto' takes only = or !=)"),
    ("state lt listen", "unexpected 'lt' at column 7 ('state' takes only = or !=)"),
    ("(sport = :22", "missing ')' for '(' at column 1"),
    ("((sport = :22)", "missing ')' for '(' at column 1"),
    ("proto tcp (sport = :22 or (dport = :22)", "missing ')' for '(' at column 11"),
    ("sport = :22)", "unexpected ')' at column 12"),
    ("(proto tcp))", "unexpected ')' at column 12"),
    ("()", "unexpected ')' at column 2"),
    (")", "unexpected ')' at column 1"),
    ("sport = :22 and", "expected a condition after 'and' at column 13"),
    ("sport = :22 &&", "expected a condition after '&&' at column 13"),
    ("sport = :22 or", "expected a condition after 'or' at column 13"),
    ("sport = :22 or )", "unexpected ')' at column 16"),
    ("not", "expected a condition after 'not' at column 1"),
    ("! ", "expected a condition after '!' at column 1"),
    ("(", "expected a condition after '(' at column 1"),
    ("and proto tcp", "unexpected 'and' at column 1"),
    ("|| proto tcp", "unexpected '||' at column 1"),
    ("proto tcp or or proto udp", "unexpected 'or' at column 14"),
    ("proto tcp and and proto udp", "unexpected 'and' at column 15"),
    ("proto tcp and or proto udp", "unexpected 'or' at column 15"),
    ("sport = :22 =", "unexpected '=' at column 13"),
    ("= :22", "unexpected '=' at column 1"),
    ("'sport' = :22", "unexpected quoted value 'sport' at column 1"),
    ("proto tcp 'x'", "unexpected quoted value 'x' at column 11"),
    ("state", "expected a state after 'state' at column 1"),
    ("state bogus", "bad state 'bogus' at column 7"),
    ("state estab", "bad state 'estab' at column 7"),
    ("proto sctp", "bad proto 'sctp' at column 7 (expected tcp, udp, raw or unix)"),
    ("proto", "expected a proto after 'proto' at column 1"),
    ("family ipx", "bad family 'ipx' at column 8 (expected inet, inet6 or unix)"),
    ("pid abc", "bad pid 'abc' at column 5"),
    ("pid -1", "bad pid '-1' at column 5"),
    ("uid 1.5", "bad uid '1.5' at column 5"),
    ("uid", "expected a uid after 'uid' at column 1"),
    ("process", "expected a process name after 'process' at column 1"),
    ("process ''", "empty value at column 9"),
    ("path", "expected a path after 'path' at column 1"),
    ("path '/tmp/a b", "unterminated quote ' at column 6"),
    ('process "nginx', 'unterminated quote " at column 9'),
    # '!' ends a word: a glob that uses it must be quoted.
    ("path /tmp/[!a]", "unknown keyword 'a]' at column 13"),
]


@pytest.mark.parametrize(("expression", "message"), BAD)
def test_malformed_expressions(expression: str, message: str) -> None:
    with pytest.raises(BadFilter) as caught:
        compile_filter(expression)
    assert str(caught.value) == f"bad filter: {message}"
    assert "\n" not in str(caught.value)


def test_bad_filter_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        compile_filter("bogus")


def test_service_name_misses_are_errors_not_crashes() -> None:
    with pytest.raises(BadFilter, match=r"bad port ':zzzz-not-a-service' at column 9"):
        compile_filter("sport = :zzzz-not-a-service")

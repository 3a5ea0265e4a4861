"""Filter expressions: ss's filter language, the part people use, plus sockdiff's own.

An expression compiles once into a plain predicate over :class:`~sockdiff.model.Socket`
records; addresses, ports, globs and state names are all resolved at compile time,
so the predicate costs a few attribute reads and comparisons per socket.

Grammar (keywords and combinators are case-insensitive)::

    expr      := and-expr { ("or" | "||" | "|") and-expr }
    and-expr  := unary { ["and" | "&&" | "&"] unary }     # juxtaposition is "and"
    unary     := ("not" | "!") unary | "(" expr ")" | condition
    condition := ("sport" | "dport") [op] PORT
               | ("src" | "dst") [eq] HOST
               | ("pid" | "uid") [op] NUMBER
               | states
               | ("dev" | "proto" | "family" | "process" | "path" | "netns") [eq] VALUE
    states    := ("state" | "exclude") [eq] STATE { ("state" | "exclude") [eq] STATE }
    op        := eq | "<" | ">" | "<=" | ">=" | "lt" | "gt" | "le" | "ge"
    eq        := "=" | "==" | "eq" | "!=" | "ne"          # no operator means "="
                                                         # ss's neq leq geq work too
    PORT      := [":"] (NUMBER | SERVICE)                  # ":8080", "8080", ":http"
    HOST      := ADDR | ADDR ":" PORT | "[" ADDR6 "]" [":" PORT] | "*" [":" PORT] | ":" PORT

``not`` binds tighter than ``and``, which binds tighter than ``or``, as in ss.

Decisions, where ss leaves room or sockdiff adds something:

- ``K != V`` is exactly ``not K = V``, for every keyword, as ss compiles it. So
  ``sport != :22`` also matches UNIX sockets, which have no port. The orderings
  ``< > <= >=`` hold only for sockets that have a port (or a uid, or a process):
  ``sport < :1024`` never matches a UNIX socket.
- ``sport``/``dport`` compare the local/remote port of any IP socket; for raw
  sockets that is the protocol number, as ss and /proc show it. Service names
  resolve through /etc/services (``socket.getservbyname``).
- ``src``/``dst`` test the local/remote endpoint of IP sockets and never match a
  UNIX socket. ``ADDR`` may be a CIDR network (``10.0.0.0/8``, ``fe80::/10``); a
  host part ``*`` (or none, as in ``:80``) matches any address. An IPv6 address
  with a port needs brackets (``[::1]:443``); unbracketed, ``::1`` is only an
  address. A zone (``[fe80::1%lo]``) is accepted and ignored, since sockets'
  addresses carry none. As in ss, an IPv4 network also matches IPv4-mapped IPv6
  addresses (``::ffff:10.1.2.3`` is in ``10.0.0.0/8``), and a mapped network
  (``::ffff:10.0.0.0/104``) matches the plain IPv4 addresses too. Host names are
  not resolved.
- ``state`` takes ss's names (``established syn-sent syn-recv fin-wait-1
  fin-wait-2 time-wait close``/``closed``/``unconnected`` ``close-wait last-ack
  listening``/``listen closing``), the record's names (``FIN_WAIT1``...), and the
  UNIX names (``connecting disconnecting free``...); ``-`` and ``_`` are the same.
  A TCP state word also matches the UNIX state that the kernel reports under the
  same number, and the other way round, as ss does: ``established`` with UNIX
  ``CONNECTED``, ``syn-sent`` with ``CONNECTING``, ``close`` with ``UNCONNECTED``
  (so ``state unconnected`` finds unconnected UDP sockets too), ``listening`` with
  ``LISTENING``. The groups are ss's: ``all``; ``connected`` (all but the
  listening and closed states, FREE and UNKNOWN); ``synchronized`` (connected
  less syn-sent/CONNECTING); ``bucket`` (syn-recv, time-wait); ``big`` (all but
  bucket). ``connected`` is that group, not the UNIX state alone: for UNIX
  ``CONNECTED`` alone write ``proto unix state established``.
- State words side by side make one set of states, as ss reads them:
  ``state established state listening`` is either state (the union), ``exclude
  time-wait`` (or ``excl``) is every state but that one, and ``state X exclude
  Y`` takes Y out of X, in order. ``state != X`` is ``exclude X``. An
  explicit ``and`` between two state words still means both (so nothing).
- ``proto`` is ``tcp udp raw unix``; ``family`` is ``inet inet6 unix`` (an
  IPv4-mapped socket is ``inet6``). ``process NAME`` holds when any owning process
  has that name; ``path GLOB`` tests a UNIX socket's own name (``@name`` when
  abstract). A value with ``*``, ``?`` or ``[`` is an fnmatch glob, matched
  case-sensitively (``*`` crosses ``/``). ``pid``/``uid`` take numbers; a socket
  whose uid is unknown matches no ``uid =`` or ordering (so every ``uid !=``).
- ``dev NAME`` (ss's word) holds for a socket bound to that device
  (``0.0.0.0%lo:80``); an unbound socket, or one whose device the backend
  cannot know (/proc), has none, so it matches no ``dev =`` (and every
  ``dev !=``). NAME may be a glob.
- As a predicate, a value the record leaves unknown (no processes, no uid, no
  device) is "does not match". A comparison narrowing a snapshot to a scope it
  was not taken in asks :func:`compile_verdict` instead, where unknown stays
  unknown (through ``not`` too), so a socket is never dropped for a value its
  side could not know.
- Values may be quoted with ``'`` or ``"`` (no escapes inside); quote one that holds
  spaces, parentheses or any of ``= < > ! & | '`` ``"``. A quoted word is always a
  value, never a keyword or an operator.

A malformed expression raises :class:`~sockdiff.errors.BadFilter` with one line
naming the offending token and its column, e.g. ``bad filter: unknown keyword
'foo' at column 7``.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import operator
import re
import socket
from collections.abc import Callable, Sequence
from typing import NamedTuple, cast

from sockdiff.errors import BadFilter, UsageError
from sockdiff.model import (
    FAMILIES,
    PROTOS,
    TCP_STATES,
    UNIX_DIAG_STATES,
    UNIX_SS_STATES,
    Endpoint,
    Namespace,
    Socket,
    namespace_label,
    namespace_labels,
    netns_of,
)
from sockdiff.ssview import CONNECTED_STATES

__all__ = [
    "Predicate",
    "Verdict",
    "as_predicate",
    "compile_filter",
    "compile_filters",
    "compile_verdict",
    "filter_keywords",
    "starts_filter",
]

Predicate = Callable[[Socket], bool]
# A filter's verdict where a value may be unknown (see :func:`compile_verdict`):
# True, False, or None for "cannot tell".
Verdict = Callable[[Socket], bool | None]
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# src/sport and dst/dport differ only in the endpoint they read: one closure
# serves both, given a C-level getter for its field.
_LOCAL: Callable[[Socket], Endpoint | None] = operator.attrgetter("local")
_REMOTE: Callable[[Socket], Endpoint | None] = operator.attrgetter("remote")

# Addresses seen per src/dst condition. A machine has few distinct addresses, but
# `watch` runs for days, so the cache is bounded.
_ADDRESS_CACHE_SIZE = 4096

_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}
# Every spelling of an operator, by its canonical form; ss's lexer takes the words.
_OPERATORS = {
    "=": "=", "==": "=", "eq": "=",
    "!=": "!=", "ne": "!=", "neq": "!=",
    "<": "<", "lt": "<",
    ">": ">", "gt": ">",
    "<=": "<=", "le": "<=", "leq": "<=",
    ">=": ">=", "ge": ">=", "geq": ">=",
}  # fmt: skip
_EQUALITY = frozenset({"=", "!="})

_AND = frozenset({"and", "&&", "&"})
_OR = frozenset({"or", "||", "|"})
_NOT = frozenset({"not", "!"})
_STATE_KEYWORDS = frozenset({"state", "exclude", "excl"})
_KEYWORDS = frozenset(
    {"sport", "dport", "src", "dst", "dev", "proto", "family", "process", "pid", "uid", "path", "netns"}
) | _STATE_KEYWORDS  # fmt: skip

_CHOICES = {"proto": PROTOS, "family": FAMILIES}
_MAX_DIGITS = 20
_GLOB_CHARS = frozenset("*?[")
_SERVICE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.+-]*")


def starts_filter(word: str) -> bool:
    """Whether ``word`` can only begin a filter expression: a keyword, ``not``, ``!`` or ``(``.

    >>> starts_filter("state"), starts_filter("NOT"), starts_filter("(sport"), starts_filter("before")
    (True, True, True, False)
    """
    return word.lower() in _KEYWORDS or word.lower() in _NOT or word.startswith(("(", "!"))


def _state_key(word: str) -> str:
    """A state word as the table below spells it: lower case, ``-`` for ``_``."""
    return word.lower().replace("_", "-")


def _state_words() -> dict[str, frozenset[str]]:
    """Each accepted state word and the record states it names.

    A TCP state and the UNIX state unix_diag reports under the same number are
    one word's two meanings, as they are to ss.
    """
    names = {
        *TCP_STATES.values(),
        *UNIX_SS_STATES.values(),
        *UNIX_DIAG_STATES.values(),
        "UNKNOWN",
    }
    words = {_state_key(name): frozenset({name}) for name in names}
    for number, unix_name in UNIX_DIAG_STATES.items():
        both = frozenset({TCP_STATES[number], unix_name})
        words[_state_key(TCP_STATES[number])] = words[_state_key(unix_name)] = both
    # ss's spellings of the record's names.
    aliases = {
        "fin-wait-1": "fin-wait1",
        "fin-wait-2": "fin-wait2",
        "syn-rcv": "syn-recv",
        "closed": "close",
    }
    for alias, word in aliases.items():
        words[alias] = words[word]

    everything = frozenset(names)
    bucket = frozenset({"SYN_RECV", "TIME_WAIT"})
    words["all"] = everything
    # ss's groups (ss.c: SS_CONN and the rest), with the UNIX states of the same numbers.
    words["connected"] = CONNECTED_STATES
    words["synchronized"] = CONNECTED_STATES - words["syn-sent"]
    words["bucket"] = bucket
    words["big"] = everything - bucket
    return words


_STATE_WORDS = _state_words()


class _Token(NamedTuple):
    """One lexeme: ``kind`` is "word", "quoted" or "punct"; ``column`` is 1-based."""

    kind: str
    text: str
    column: int

    def show(self) -> str:
        """The token as an error message quotes it (a long one cut short)."""
        return f"'{self.text}'" if len(self.text) <= 64 else f"'{self.text[:60]}...'"


_PUNCT_2 = frozenset({"&&", "||", "==", "!=", "<=", ">="})
_PUNCT_1 = frozenset("()!=<>&|")
_WORD_END = frozenset("()!=<>&|'\"")


def _tokenize(text: str) -> list[_Token]:
    """Split an expression into words, quoted values and punctuation.

    >>> [t.text for t in _tokenize("sport>=:80 and !(src '[::1]')")]
    ['sport', '>=', ':80', 'and', '!', '(', 'src', '[::1]', ')']
    """
    tokens: list[_Token] = []
    i, end = 0, len(text)
    while i < end:
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "'\"":
            close = text.find(char, i + 1)
            if close == -1:
                raise BadFilter(f"bad filter: unterminated quote {char} at column {i + 1}")
            tokens.append(_Token("quoted", text[i + 1 : close], i + 1))
            i = close + 1
        elif text[i : i + 2] in _PUNCT_2:
            tokens.append(_Token("punct", text[i : i + 2], i + 1))
            i += 2
        elif char in _PUNCT_1:
            tokens.append(_Token("punct", char, i + 1))
            i += 1
        else:
            start = i
            while i < end and not text[i].isspace() and text[i] not in _WORD_END:
                i += 1
            tokens.append(_Token("word", text[start:i], start + 1))
    return tokens


def _parse_port(text: str) -> int:
    """A port number or service name, with or without ss's leading colon.

    >>> _parse_port(":8080"), _parse_port("22")
    (8080, 22)
    """
    text = text.removeprefix(":")
    if text.isascii() and text.isdigit():
        port = int(text)
        if port > 65535:
            raise ValueError(text)
        return port
    if not _SERVICE_NAME.fullmatch(text):
        raise ValueError(text)
    try:
        return socket.getservbyname(text)
    except OSError as err:
        raise ValueError(text) from err


def _parse_networks(host: str) -> tuple[_Network, ...]:
    """The networks an address or CIDR stands for, mapped IPv4 included.

    >>> _parse_networks("::ffff:10.0.0.0/104")
    (IPv6Network('::ffff:a00:0/104'), IPv4Network('10.0.0.0/8'))
    """
    if "%" in host:
        # A zone only scopes a link-local address; sockets' addresses have none.
        address, _, rest = host.partition("%")
        zone, slash, length = rest.partition("/")
        if not zone or ":" not in address:
            raise ValueError(host)
        host = address + slash + length
    network = ipaddress.ip_network(host, strict=False)
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return network, ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return (network,)


def _parse_host(text: str) -> tuple[tuple[_Network, ...] | None, int | None]:
    """ss's host condition: the networks (None: any) and the port (None: any).

    >>> _parse_host("[::1]:443")
    ((IPv6Network('::1/128'),), 443)
    >>> _parse_host("*:80")
    (None, 80)
    """
    bracketed = text.startswith("[")
    port_text: str | None = None
    if bracketed:
        close = text.find("]")
        if close == -1:
            raise ValueError(text)
        host, rest = text[1:close], text[close + 1 :]
        if rest.startswith("/"):
            length, colon, after = rest[1:].partition(":")
            host = f"{host}/{length}"
            port_text = after if colon else None
        elif rest.startswith(":"):
            port_text = rest[1:]
        elif rest:
            raise ValueError(text)
    elif text.count(":") > 1:
        host = text  # a bare IPv6 address can carry no port
    else:
        host, colon, after = text.partition(":")
        port_text = after if colon else None

    port = None if port_text in (None, "*") else _parse_port(port_text or "")
    if not bracketed and host in ("", "*"):
        if host == "" and port is None:
            raise ValueError(text)
        return None, port
    return _parse_networks(host), port


def _address_in(address: str, networks: tuple[_Network, ...]) -> bool:
    """Whether a socket's address text lies in any of the networks."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return any(ip in net or (mapped is not None and mapped in net) for net in networks)


def _host_test(
    field: Callable[[Socket], Endpoint | None], networks: tuple[_Network, ...] | None, port: int | None
) -> Predicate:
    """A predicate for ``src``/``dst``: the endpoint ``field`` reads matches."""
    cache: dict[str, bool] = {}

    def test(sock: Socket) -> bool:
        endpoint = field(sock)
        if endpoint is None:
            return False
        address = endpoint.address
        if type(address) is not str:  # a UNIX socket's endpoint
            return False
        if port is not None and endpoint.port != port:
            return False
        if networks is None:
            return True
        hit = cache.get(address)
        if hit is None:
            hit = _address_in(address, networks)
            if len(cache) >= _ADDRESS_CACHE_SIZE:
                cache.clear()
            cache[address] = hit
        return hit

    return test


def _port_test(
    field: Callable[[Socket], Endpoint | None], compare: Callable[[int, int], bool], port: int
) -> Predicate:
    """A predicate for ``sport``/``dport``: the endpoint ``field`` reads has such a port."""

    def test(sock: Socket) -> bool:
        endpoint = field(sock)
        if endpoint is None:
            return False
        value = endpoint.port
        return type(value) is int and compare(value, port)

    return test


def _name_test(pattern: str) -> Callable[[str], bool]:
    """Equality with ``pattern``, or an fnmatch glob when it has glob characters."""
    if _GLOB_CHARS.isdisjoint(pattern):
        return pattern.__eq__
    match = re.compile(fnmatch.translate(pattern)).match
    return lambda name: match(name) is not None


def _negate(test: Verdict) -> Verdict:
    return lambda sock: not test(sock)


def _all(tests: list[Verdict]) -> Verdict:
    """One predicate for ``a and b and ...``: flat, so 1000 terms are one call, not 1000 nested."""
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:  # the common case, without a loop
        left, right = tests
        return lambda sock: left(sock) and right(sock)
    terms = tuple(tests)
    return lambda sock: all(test(sock) for test in terms)


def _any(tests: list[Verdict]) -> Verdict:
    """One predicate for ``a or b or ...``, flat as :func:`_all`."""
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        left, right = tests
        return lambda sock: left(sock) or right(sock)
    terms = tuple(tests)
    return lambda sock: any(test(sock) for test in terms)


def _negate_verdict(test: Verdict) -> Verdict:
    """``not``, where unknown stays unknown."""

    def negated(sock: Socket) -> bool | None:
        verdict = test(sock)
        return None if verdict is None else not verdict

    return negated


def _all_verdicts(tests: list[Verdict]) -> Verdict:
    """``and`` of verdicts: False if any is, else unknown if any is, else True (Kleene's logic)."""
    if len(tests) == 1:
        return tests[0]
    terms = tuple(tests)

    def both(sock: Socket) -> bool | None:
        result: bool | None = True
        for test in terms:
            verdict = test(sock)
            if verdict is False:
                return False
            if verdict is None:
                result = None
        return result

    return both


def _any_verdicts(tests: list[Verdict]) -> Verdict:
    """``or`` of verdicts: True if any is, else unknown if any is, else False."""
    if len(tests) == 1:
        return tests[0]
    terms = tuple(tests)

    def either(sock: Socket) -> bool | None:
        result: bool | None = False
        for test in terms:
            verdict = test(sock)
            if verdict is True:
                return True
            if verdict is None:
                result = None
        return result

    return either


# What a record leaves unknown, for the conditions that read it: no processes
# (SPEC.md: empty when unknown, as after --no-processes), no uid, no device (/proc).
_UNKNOWN_WHEN: dict[str, Callable[[Socket], bool]] = {
    "process": lambda sock: not sock.processes,
    "pid": lambda sock: not sock.processes,
    "uid": lambda sock: sock.uid is None,
    "dev": lambda sock: sock.interface is None,
}


def _unless_unknown(test: Verdict, unknown: Callable[[Socket], bool]) -> Verdict:
    return lambda sock: None if unknown(sock) else test(sock)


# Parentheses nested deeper than this are refused: each level costs the parser and
# the predicate a few stack frames, and no one writes a filter this deep.
MAX_DEPTH = 64


def _netns_inode(value: str) -> int | None:
    """The inode ``value`` names: ``N``, ``net:[N]``, or a label ending ``@net:[N]``."""
    _, at, text = value.rpartition("@")
    if text.startswith("net:[") and text.endswith("]"):
        text = text[5:-1]
    elif at:
        return None
    if text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS:
        return int(text)
    return None


def _names_namespace(value: str, namespace: Namespace) -> bool:
    """Whether ``value`` names ``namespace`` by name, label, container name or id prefix."""
    if value in namespace.names or value == namespace_label(namespace):
        return True
    container = namespace.container
    if container is None:
        return False
    runtime, qualified, rest = value.partition(":")
    if qualified and runtime == container.runtime:
        value = rest
    return bool(value) and (value == container.name or container.id.startswith(value))


class _Parser:
    """Recursive descent over the tokens, building closures as it goes."""

    def __init__(
        self, text: str, verdicts: bool = False, sides: Sequence[Sequence[Namespace]] | None = None
    ) -> None:
        self.tokens = _tokenize(text)
        # netns LABEL resolves among each side's namespaces; None: not known here, only an inode names one.
        self.sides = sides
        # Verdicts: a condition on a value the record leaves unknown is None, and
        # not/and/or carry it (compile_verdict); otherwise it is False.
        self.verdicts = verdicts
        self.negate = _negate_verdict if verdicts else _negate
        self.all = _all_verdicts if verdicts else _all
        self.any = _any_verdicts if verdicts else _any
        self.pos = 0
        self.last: _Token | None = None
        self.keywords: set[str] = set()  # the condition keywords seen, lower case
        self.depth = 0  # parentheses open

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def advance(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        self.last = token
        return token

    def is_one_of(self, token: _Token | None, words: frozenset[str]) -> bool:
        """Whether the token is one of ``words`` (unquoted; words are lower case)."""
        if token is None or token.kind == "quoted":
            return False
        return token.text.lower() in words

    def ended(self, wanted: str) -> BadFilter:
        """The error for an expression that stops where ``wanted`` should follow."""
        assert self.last is not None  # an empty expression is caught up front
        return BadFilter(
            f"bad filter: expected {wanted} after {self.last.show()} at column {self.last.column}"
        )

    def parse(self) -> Verdict:
        if not self.tokens:
            raise BadFilter("bad filter: empty expression")
        test = self.parse_or()
        token = self.peek()
        if token is not None:  # only a ')' stops parse_or early
            raise BadFilter(f"bad filter: unexpected {token.show()} at column {token.column}")
        return test

    def parse_or(self) -> Verdict:
        tests = [self.parse_and()]
        while self.is_one_of(self.peek(), _OR):
            self.advance()
            tests.append(self.parse_and())
        return self.any(tests)

    def parse_and(self) -> Verdict:
        tests = [self.parse_unary()]
        while True:
            token = self.peek()
            if token is None or token.text == ")" or self.is_one_of(token, _OR):
                return self.all(tests)
            if self.is_one_of(token, _AND):
                self.advance()
            tests.append(self.parse_unary())

    def parse_unary(self) -> Verdict:
        negations = 0
        while self.is_one_of(self.peek(), _NOT):  # a loop: "not not ... x" is no deeper than x
            self.advance()
            negations += 1
        test = self.parse_operand()
        return self.negate(test) if negations % 2 else test

    def parse_operand(self) -> Verdict:
        token = self.peek()
        if token is None:
            raise self.ended("a condition")
        if token.kind == "punct" and token.text == "(":
            if self.depth == MAX_DEPTH:
                raise BadFilter(
                    f"bad filter: parentheses nested deeper than {MAX_DEPTH} at column {token.column}"
                )
            self.advance()
            self.depth += 1
            test = self.parse_or()
            self.depth -= 1
            if self.peek() is None:
                raise BadFilter(f"bad filter: missing ')' for '(' at column {token.column}")
            self.advance()  # parse_or stops only at the end or at ')'
            return test
        if self.is_one_of(token, _KEYWORDS):
            return self.parse_condition(self.advance())
        if token.kind == "quoted":
            raise BadFilter(f"bad filter: unexpected quoted value {token.show()} at column {token.column}")
        if token.kind == "word" and not self.is_one_of(token, _AND | _OR):
            raise BadFilter(f"bad filter: unknown keyword {token.show()} at column {token.column}")
        raise BadFilter(f"bad filter: unexpected {token.show()} at column {token.column}")

    def parse_operator(self, keyword: str, ordered: bool) -> str:
        """The comparison after a keyword, "=" when there is none."""
        token = self.peek()
        if token is None or token.kind == "quoted":
            return "="
        op = _OPERATORS.get(token.text.lower())
        if op is None:
            return "="
        if not ordered and op not in _EQUALITY:
            raise BadFilter(
                f"bad filter: unexpected {token.show()} at column {token.column}"
                f" ('{keyword}' takes only = or !=)"
            )
        self.advance()
        return op

    def parse_value(self, wanted: str) -> _Token:
        token = self.peek()
        if token is None:
            raise self.ended(wanted)
        if token.kind == "punct":
            raise BadFilter(
                f"bad filter: unexpected {token.show()} at column {token.column} (expected {wanted})"
            )
        if not token.text:
            raise BadFilter(f"bad filter: empty value at column {token.column}")
        return self.advance()

    def parse_condition(self, keyword: _Token) -> Verdict:
        name = keyword.text.lower()
        if name in _STATE_KEYWORDS:
            self.keywords.add("state")
            return self.states_condition(name)
        self.keywords.add(name)
        ordered = name in ("sport", "dport", "pid", "uid")
        op = self.parse_operator(name, ordered)
        test: Verdict
        match name:
            case "sport" | "dport":
                test = self.port_condition(name, op)
            case "src" | "dst":
                test = self.host_condition(name)
            case "pid" | "uid":
                test = self.number_condition(name, op)
            case "proto" | "family":
                test = self.choice_condition(name)
            case "process":
                value = self.parse_value("a process name")
                test = self.process_condition(value.text)
            case "dev":
                test = self.device_condition(self.parse_value("a device name").text)
            case "netns":
                test = self.netns_condition(self.parse_value("a namespace"))
            case _:
                value = self.parse_value("a path")
                test = self.path_condition(value.text)
        if self.verdicts and name in _UNKNOWN_WHEN:
            test = _unless_unknown(test, _UNKNOWN_WHEN[name])
        return self.negate(test) if op == "!=" else test

    def netns_condition(self, token: _Token) -> Predicate:
        """``netns LABEL``: a namespace's label, ``ip netns`` name, container name
        (``runtime:name`` too), container id prefix (``runtime:ID`` too), or inode
        (``N`` or ``net:[N]``, as /proc shows it, and a label that ends
        ``@net:[N]``). A side where LABEL is one namespace's label (labels are
        unique within a snapshot: :func:`~sockdiff.model.namespace_labels`)
        matches that one only; otherwise each namespace it names. Names resolve
        among the sides' namespaces at compile time, so the test is one set
        lookup; one that names none of them is a :class:`BadFilter` (a verdict,
        judging a snapshot's own filter, matches nothing instead)."""
        value = token.text
        inodes = set()
        inode = _netns_inode(value)
        if inode is not None and (
            self.sides is None or self.verdicts or any(ns.inode == inode for s in self.sides for ns in s)
        ):
            inodes.add(inode)  # an inode of the sides' (or of whatever is judged later)
        for side in self.sides or ():
            labelled = {found for found, label in namespace_labels(tuple(side)).items() if label == value}
            inodes |= labelled or {ns.inode for ns in side if _names_namespace(value, ns)}
        if not inodes and self.sides is not None and not self.verdicts:
            where = "the snapshot" if any(self.sides) else "a snapshot of one namespace"
            raise BadFilter(
                f"bad filter: netns {token.show()} at column {token.column} names no namespace of {where}"
            )

        def netns_test(sock: Socket) -> bool:
            return netns_of(sock) in inodes

        return netns_test

    def bad_value(self, what: str, token: _Token, hint: str = "") -> BadFilter:
        return BadFilter(f"bad filter: bad {what} {token.show()} at column {token.column}{hint}")

    def port_condition(self, name: str, op: str) -> Predicate:
        token = self.parse_value("a port")
        try:
            port = _parse_port(token.text)
        except ValueError:
            raise self.bad_value("port", token) from None
        index = _LOCAL if name == "sport" else _REMOTE
        return _port_test(index, _COMPARISONS["=" if op == "!=" else op], port)

    def host_condition(self, name: str) -> Predicate:
        token = self.parse_value("an address")
        try:
            networks, port = _parse_host(token.text)
        except ValueError:
            raise self.bad_value("address", token) from None
        return _host_test(_LOCAL if name == "src" else _REMOTE, networks, port)

    def number_condition(self, name: str, op: str) -> Predicate:
        token = self.parse_value(f"a {name}")
        if not (token.text.isascii() and token.text.isdigit()):
            raise self.bad_value(name, token)
        # No pid or uid has more digits than 2**32's; a longer number (past
        # Python's 4300-digit limit, even) says nothing a 20-digit one does not.
        if len(token.text.lstrip("0")) > _MAX_DIGITS:
            raise self.bad_value(name, token, f" (more than {_MAX_DIGITS} digits)")
        number = int(token.text)
        compare = _COMPARISONS["=" if op == "!=" else op]
        if name == "uid":

            def uid_test(sock: Socket) -> bool:
                uid = sock.uid
                return uid is not None and compare(uid, number)

            return uid_test

        def pid_test(sock: Socket) -> bool:
            return any(compare(process.pid, number) for process in sock.processes)

        return pid_test

    def states_condition(self, name: str) -> Predicate:
        """A run of state words side by side: one set of states, built in order as ss does."""
        chosen: frozenset[str] | None = None
        while True:
            excluded = (name != "state") != (self.parse_operator(name, ordered=False) == "!=")
            token = self.parse_value("a state")
            states = _STATE_WORDS.get(_state_key(token.text))
            if states is None:
                raise self.bad_value("state", token)
            if chosen is None:  # ss starts from no state for "state", every state for "exclude"
                chosen = _STATE_WORDS["all"] if excluded else frozenset()
            chosen = chosen - states if excluded else chosen | states
            if not self.is_one_of(self.peek(), _STATE_KEYWORDS):
                break
            name = self.advance().text.lower()
        final = chosen
        return lambda sock: sock.state in final

    def choice_condition(self, name: str) -> Predicate:
        choices = _CHOICES[name]
        token = self.parse_value(f"a {name}")
        value = token.text.lower()
        if value not in choices:
            hint = f" (expected {', '.join(choices[:-1])} or {choices[-1]})"
            raise self.bad_value(name, token, hint)
        if name == "proto":
            return lambda sock: sock.proto == value
        return lambda sock: sock.family == value

    def device_condition(self, pattern: str) -> Predicate:
        matches = _name_test(pattern)

        def test(sock: Socket) -> bool:
            device = sock.interface
            return device is not None and matches(device)

        return test

    def process_condition(self, pattern: str) -> Predicate:
        matches = _name_test(pattern)
        return lambda sock: any(matches(process.name) for process in sock.processes)

    def path_condition(self, pattern: str) -> Predicate:
        matches = _name_test(pattern)

        def test(sock: Socket) -> bool:
            path = sock.local.path
            return type(path) is str and matches(path)

        return test


def compile_filter(
    text: str,
    namespaces: Sequence[Namespace] | None = None,
    sides: Sequence[Sequence[Namespace]] | None = None,
) -> Predicate:
    """Compile a filter expression into a predicate over socket records.

    ``netns LABEL`` resolves names among ``namespaces`` (a snapshot's), or
    each of ``sides`` (a comparison's: a label is each side's own); a name that
    names none of them is a :class:`~sockdiff.errors.BadFilter`. Without
    them, only an inode (``N``, ``net:[N]``) matches.

    Raises :class:`~sockdiff.errors.BadFilter`, naming the offending token and its
    column, when the expression is malformed.

    >>> from sockdiff.model import inet
    >>> listener = Socket("tcp", "inet", "stream", "LISTEN", inet("0.0.0.0", 22),
    ...                   inet("0.0.0.0", 0), 7, 0, 0, 128, ())
    >>> compile_filter("sport = :22 and state listening")(listener)
    True
    >>> compile_filter("src 10.0.0.0/8 or dport > :1024")(listener)
    False
    """
    if not isinstance(text, str):
        raise UsageError(f"text: expected a filter expression, not {type(text).__name__}")
    if namespaces is not None:
        sides = (*(sides or ()), namespaces)
    return cast(Predicate, _Parser(text, sides=sides).parse())


def compile_verdict(text: str, namespaces: Sequence[Namespace] | None = None) -> Verdict:
    """Compile a filter expression into a three-valued test: True, False, or None
    where the record leaves a value the expression reads unknown.

    Unknown is no processes (``process``, ``pid``), no uid, or no device
    (``dev``): a snapshot taken without processes, or read from /proc,
    cannot say. ``not`` keeps unknown unknown; ``and`` is False when any side
    is, ``or`` True when any side is (Kleene's logic). This is how a comparison
    narrows a snapshot to a scope it was not taken in: null never narrows.

    >>> from sockdiff.model import inet
    >>> unowned = Socket("tcp", "inet", "stream", "LISTEN", inet("0.0.0.0", 80),
    ...                  inet("0.0.0.0", 0), 7, 0, 0, 128, ())
    >>> [compile_verdict(text)(unowned) for text in ("process nginx", "not process nginx",
    ...  "process nginx or sport = :80", "process nginx and sport = :22")]
    [None, None, True, False]

    ``namespaces``: as :func:`compile_filter` takes them, except that a name
    that names none of them matches nothing (a snapshot's own filter may name
    a namespace of the other side).
    """
    return _Parser(text, verdicts=True, sides=None if namespaces is None else (namespaces,)).parse()


def filter_keywords(text: str) -> frozenset[str]:
    """The condition keywords an expression uses, lower case.

    >>> sorted(filter_keywords("PID 10 or (sport = :22 and not Process sshd)"))
    ['pid', 'process', 'sport']
    """
    parser = _Parser(text)
    parser.parse()
    return frozenset(parser.keywords)


def compile_filter_for(text: str, processes: bool) -> Predicate:
    """:func:`compile_filter`, refusing an expression on owners where ``processes`` is False.

    Without owners every socket would fail ``process``/``pid``: an empty result
    that looks like an answer.
    """
    test = compile_filter(text)
    if not processes and not filter_keywords(text).isdisjoint({"pid", "process"}):
        raise UsageError(f"the filter {text!r} reads the owning processes, which are left out")
    return test


def compile_filters(texts: Sequence[str]) -> Predicate | None:
    """One predicate that holds when any of the expressions does; None for none.

    This is how a list of ``ignore`` expressions is applied.
    """
    tests = [compile_filter(text) for text in texts]
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    return lambda sock: any(test(sock) for test in tests)


def as_predicate(
    value: str | Predicate | Sequence[str | Predicate] | None,
    what: str = "ignore",
    sides: Sequence[Sequence[Namespace]] | None = None,
) -> Predicate | None:
    """What the library takes for ``ignore`` and ``only``: a filter expression, a
    predicate over sockets (a compiled filter), or a list of either, which holds
    when any does (as :func:`compile_filters` joins them); None or an empty list for none.

    A malformed expression raises :class:`~sockdiff.errors.BadFilter`; anything
    else, :class:`~sockdiff.errors.UsageError` naming ``what``. ``sides``:
    where ``netns LABEL`` resolves, as :func:`compile_filter` takes them.

    >>> from sockdiff.model import unix_name
    >>> unix = Socket("unix", "unix", "stream", "LISTENING", unix_name("/run/a"), None, 9, 0, 0, 0, ())
    >>> as_predicate("proto unix")(unix), as_predicate(["proto tcp", lambda s: s.inode == 9])(unix)
    (True, True)
    """
    if value is None:
        return None
    if isinstance(value, str):
        return compile_filter(value, sides=sides)
    if callable(value):
        return value
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise UsageError(
            f"{what}: expected a filter expression, a predicate or a list of them, not {type(value).__name__}"
        )
    tests: list[Predicate] = []
    for item in value:
        if isinstance(item, str):
            tests.append(compile_filter(item, sides=sides))
        elif callable(item):
            tests.append(item)
        else:
            raise UsageError(
                f"{what}: expected a filter expression or a predicate in the list, not {type(item).__name__}"
            )
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    return lambda sock: any(test(sock) for test in tests)

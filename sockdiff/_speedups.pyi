# The compiled fast paths (sockdiff/_speedups.c); each returns None where it declines.

from collections.abc import Callable, Sequence
from typing import TypeVar

_E = TypeVar("_E")
_S = TypeVar("_S")

def messages(buffer: bytes | bytearray, size: int, /) -> list[tuple[int, int, int, int]] | None: ...
def inet_record(
    buffer: bytes | bytearray,
    offset: int,
    end: int,
    addresses: dict[bytes, str],
    seen: set[int],
    sockets: list[_S],
    context: tuple[object, ...],
    /,
) -> bool | None: ...
def proc_inet_rows(
    data: bytes, width: int, endpoint: Callable[[str, int], _E], /
) -> list[tuple[_E, _E, int, int, int, int, int]] | None: ...
def in_step(
    theirs: Sequence[object], mine: Sequence[object], lookahead: int, by_identity: bool, /
) -> tuple[list[int], list[int], list[int]] | None: ...
def fd_links(dir_fd: int, /) -> tuple[list[int], list[int], list[tuple[str, int]]] | None: ...
def socket_facts(
    sockets: Sequence[object],
    socket_type: type,
    endpoint_type: type,
    process_type: type,
    unset: object,
    inet_states: frozenset[str],
    unix_states: frozenset[str],
    /,
) -> tuple[int, set[str], set[str], set[str], set[str], set[str], set[object]] | None: ...

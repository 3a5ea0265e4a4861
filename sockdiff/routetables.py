"""Which IPv6 table each row of /proc/net/ipv6_route (and of netstat -6rn, its print) is in.

Neither shows table ids. The kernel walks one table after another, and each walk
ends at the table's root, which holds the table's default routes (::/0, by rising
metric) or, when it has none, the null entry. It visits tables by the bucket of
their id in a 256-slot hash (ipv6_route_seq_next_table), so main (254) and local
(255) come last, local after main; a kernel without multiple-table support has
one table, main. Other tables get :data:`~sockdiff.model.UNNUMBERED_TABLE`.
Pure: the proc backend and the saved netstat reader cut their rows here alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from .model import RT_TABLE_LOCAL, RT_TABLE_MAIN, UNNUMBERED_TABLE

__all__ = ["Ipv6Row", "ipv6_table_runs", "ipv6_tables"]


class Ipv6Row(Protocol):
    """What cutting needs of a row: its metric, whether it is a default route or a null entry."""

    @property
    def metric(self) -> int: ...

    def is_default(self) -> bool: ...

    def is_null_entry(self) -> bool: ...


Row = TypeVar("Row", bound=Ipv6Row)


def ipv6_table_runs(rows: Sequence[Row]) -> list[list[Row]]:
    """The rows cut into tables, in the kernel's order, null entries left out.

    A table ends at a null entry or at the last of a run of default routes; a
    default route whose metric falls below the one before it starts another table.
    """
    tables: list[list[Row]] = []
    current: list[Row] = []
    in_defaults = False
    for row in rows:
        if row.is_null_entry():
            if in_defaults:
                tables.append(current)
                current = []
            tables.append(current)
            current = []
            in_defaults = False
        elif row.is_default():
            if in_defaults and row.metric < current[-1].metric:
                tables.append(current)
                current = []
            current.append(row)
            in_defaults = True
        else:
            if in_defaults:
                tables.append(current)
                current = []
                in_defaults = False
            current.append(row)
    if current:
        tables.append(current)
    return tables


def ipv6_tables(rows: Sequence[Row]) -> list[tuple[int, list[Row]]]:
    """Every table's rows, in the kernel's order, each with its id (main and local the last
    two; the others :data:`~sockdiff.model.UNNUMBERED_TABLE`). A table holding only its
    null entry (no route) is left out."""
    tables = ipv6_table_runs(rows)
    if len(tables) < 2:
        return [(RT_TABLE_MAIN, table) for table in tables if table]
    ids = [UNNUMBERED_TABLE] * (len(tables) - 2) + [RT_TABLE_MAIN, RT_TABLE_LOCAL]
    return [(table_id, table) for table_id, table in zip(ids, tables, strict=True) if table]

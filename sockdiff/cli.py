"""The command line: each command parses its flags, makes one library call, renders.

Errors end here: a :class:`SockdiffError` or a usage mistake becomes one line on
stderr and exit code 2. Reports go to stdout, diagnostics to stderr.
"""

# No ``from __future__ import annotations`` here: typer reads each command's
# annotations, and strings it evaluates one by one (twice: for the signature and
# for the type hints) when the command is built, on every run (~1.6 ms of a
# snapshot's start, more for --help). Written as expressions they are evaluated
# once, while the module loads; annotations naming what is imported only for
# type checking are quoted.
import contextlib
import copy
import dataclasses
import gc
import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn, TypeVar

import typer

from ._version import __version__
from .errors import SockdiffError, UsageError, WriteError

if TYPE_CHECKING:
    from .config import Defaults
    from .differ import Diff
    from .formats import Format, ListingChoice, RunChoice
    from .leaks import LeakEngine
    from .model import Socket
    from .output import Inputs
    from .sources import TextOptions

#: A command's choice of format (compare's, run's) for its --report options.
Choice = TypeVar("Choice", bound="Format")

app = typer.Typer(
    name="sockdiff",
    help="Snapshots of a Linux machine's sockets, and what changed between them.",
    add_completion=False,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Netns = Annotated[
    str | None,
    typer.Option(
        "--netns",
        "-N",
        help="Read live sources in this network namespace: a name under /run/netns, or a path"
        " such as /proc/PID/ns/net.",
    ),
]
Reports = Annotated[
    list[str] | None,
    typer.Option(
        "--report",
        metavar="FORMAT=PATH",
        help="Also write the report in FORMAT to PATH (repeatable), e.g. junit=sockdiff.xml.",
    ),
]
InputFormat = Annotated[
    str | None,
    typer.Option(
        "--input-format",
        help="Read '-' as a listing saved by this tool: ss or netstat (files say by their header).",
    ),
]
Lenient = Annotated[
    bool,
    typer.Option("--lenient", help="Skip the lines of a saved ss or netstat listing that cannot be read."),
]
AllNetns = Annotated[
    bool,
    typer.Option(
        "--all-netns",
        help="Read live sources in every network namespace of the host (containers, pods, ip netns),"
        " each record labelled with its namespace.",
    ),
]
Tcp = Annotated[bool, typer.Option("--tcp", "-t", help="TCP sockets.")]
Udp = Annotated[bool, typer.Option("--udp", "-u", help="UDP sockets.")]
Raw = Annotated[bool, typer.Option("--raw", "-w", help="Raw sockets.")]
Unix = Annotated[bool, typer.Option("--unix", "-x", help="UNIX sockets.")]


def _protos(tcp: bool, udp: bool, raw: bool, unix: bool) -> tuple[str, ...]:
    from .model import PROTOS  # the schema (and msgspec) is loaded by the commands that use it

    chosen = tuple(p for p, wanted in zip(PROTOS, (tcp, udp, raw, unix), strict=True) if wanted)
    return chosen or PROTOS


def _where(words: Sequence[str]) -> "Callable[[Socket], bool] | None":
    if not words:
        return None
    from .filter import compile_filter

    return compile_filter(" ".join(words))


def _sections(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not chosen:
        _fail("--sections needs at least one of sockets, interfaces, routes")
    return chosen


# A day: longer sleeps are a typo (inf, 1e300 overflow time_t and once crashed the sleep).
_MAX_INTERVAL = 86400.0


def _fail(message: str) -> NoReturn:
    raise UsageError(message)


@app.command()
def snapshot(
    filter_words: Annotated[
        list[str] | None,
        typer.Argument(metavar="[FILTER]...", help="Keep only sockets this filter expression matches."),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Write to this file ('-': standard output; .gz: compressed)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Name in the store (default: the time taken).")
    ] = None,
    backend: Annotated[str, typer.Option("--backend", "-b", help="netlink, proc or auto.")] = "auto",
    netns: Netns = None,
    all_netns: AllNetns = False,
    no_processes: Annotated[
        bool, typer.Option("--no-processes", help="Skip attributing sockets to processes.")
    ] = False,
    sections: Annotated[
        str | None,
        typer.Option("--sections", help="Comma list of sockets, interfaces, routes (default: every one)."),
    ] = None,
    tcp: Tcp = False,
    udp: Udp = False,
    raw: Raw = False,
    unix: Unix = False,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Convert this source (a saved ss or netstat listing, a file, a stored name) instead.",
        ),
    ] = None,
    input_format: InputFormat = None,
    lenient: Lenient = False,
) -> None:
    """Take a snapshot (sockets, interfaces, routes); without -o it goes into the store, its path printed."""
    from .acquire import take
    from .snapshots import save

    if output is not None and name is not None:
        _fail("give either -o PATH or --name NAME, not both")
    held = None
    if output is None:
        from . import store

        if name == "":
            _fail("the snapshot name is empty (leave --name out to name it by time)")
        if name is not None:
            store.check_name(name)  # before the snapshot is taken, not after
        held = store.opened(create=True)  # a store that cannot be made is said before the work
    if source is not None:
        from .sources import TextOptions, open_source  # only --from reads a source

        if filter_words or sections is not None or tcp or udp or raw or unix or backend != "auto":
            _fail("--from converts a source whole: it takes no filter, --sections, protocol or --backend")
        taken = open_source(
            source, netns=netns, processes=not no_processes, text_options=TextOptions(input_format, lenient)
        )
    else:
        taken = take(
            backend=backend,
            netns=netns,
            processes=not no_processes,
            protos=_protos(tcp, udp, raw, unix),
            where=" ".join(filter_words or []) or None,
            sections=None if sections is None else _sections(sections),
            all_netns=all_netns,
        )
    _until_exit(taken)
    if output is not None:
        save(taken, output)
        return
    # Only a snapshot kept in the store needs this (-o is the benchmarked path).
    from .formats.notation import escape

    assert held is not None
    with held:  # the store checked before taking is the one written in
        print(escape(str(held.keep(taken, name))))


@app.command()
def show(
    words: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[SOURCE] [FILTER]...",
            help=(
                "A snapshot file, '-', a stored name, live (default), live:netlink or live:proc;"
                " then a filter expression."
            ),
        ),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="table, json, jsonl or prometheus (every state unless -l).")
    ] = "table",
    tcp: Tcp = False,
    udp: Udp = False,
    raw: Raw = False,
    unix: Unix = False,
    listening: Annotated[
        bool, typer.Option("--listening", "-l", help="Only sockets waiting for peers, as ss -l.")
    ] = False,
    everything: Annotated[
        bool, typer.Option("--all", "-a", help="Sockets in every state, as ss -a.")
    ] = False,
    processes: Annotated[bool, typer.Option("--processes", "-p", help="Show the owning processes.")] = False,
    numeric: Annotated[
        bool, typer.Option("--numeric", "-n", help="Numeric addresses and ports (the default).")
    ] = False,
    resolve: Annotated[bool, typer.Option("--resolve", "-r", help="Resolve host and service names.")] = False,
    ipv4: Annotated[bool, typer.Option("--ipv4", "-4", help="IPv4 sockets (or routes), as ss -4.")] = False,
    ipv6: Annotated[bool, typer.Option("--ipv6", "-6", help="IPv6 sockets (or routes), as ss -6.")] = False,
    summary: Annotated[
        bool,
        typer.Option(
            "--summary",
            "-s",
            help="Counts by protocol and state, laid out as ss -s (then the table, if asked).",
        ),
    ] = False,
    backend: Annotated[
        str | None, typer.Option("--backend", "-b", help="Read live through netlink, proc or auto.")
    ] = None,
    no_header: Annotated[
        bool, typer.Option("--no-header", "-H", help="Leave out the header line, as ss -H.")
    ] = False,
    extended: Annotated[
        bool, typer.Option("--extended", "-e", help="Add uid, inode and v6only, as ss -e.")
    ] = False,
    interfaces: Annotated[
        bool,
        typer.Option("--interfaces", "-i", help="The interfaces that are up, as netstat -i (-a: all)."),
    ] = False,
    route: Annotated[
        bool, typer.Option("--route", help="The routes, as netstat -rn and -6rn (netstat's -r; see --table).")
    ] = False,
    table: Annotated[
        str | None,
        typer.Option(
            "--table",
            help="With --route: main, local, all or a table number (default: netstat's: v4 main, v6 all).",
        ),
    ] = None,
    netns: Netns = None,
    input_format: InputFormat = None,
    lenient: Lenient = False,
    all_netns: AllNetns = False,
) -> None:
    """List sockets, ss-like: connected ones by default, -l listening, -a all.

    As in ss, -t -u -w choose protocols and -4 -6 -x families (-t -4: TCP over
    IPv4), and a filter that names states (state listening state established)
    replaces the default view and -l / -a. With -i, the interfaces as netstat -i
    lists them; with --route, the routes as netstat -rn and -6rn (-4 / -6 to narrow).
    """
    from .filter import filter_keywords
    from .formats import SHOW_FORMATS, Format, ListingOptions, listing_format, parse_format
    from .formats.ss import sockets_summary
    from .model import namespace_labels
    from .sources import LIVE, TextOptions, is_source, open_source
    from .ssview import ss_kinds, ss_view

    text_options = TextOptions(input_format, lenient)

    chosen = parse_format(output_format, SHOW_FORMATS)
    if summary and chosen is not Format.TABLE:
        _fail("--summary is a table: it does not go with --format json, jsonl or prometheus")
    words = list(words or [])
    source = words.pop(0) if words and is_source(words[0]) else "live"
    if backend is not None:
        source = _live_through(source, backend)
    if interfaces or route:
        if interfaces and route:
            _fail("give either -i or --route, not both")
        if words:
            _fail("a filter expression selects sockets; -i and --route take none")
        mode = "-i" if interfaces else "--route"
        given = _socket_options(tcp, udp, raw, unix, listening, processes, resolve, extended, summary)
        # -a lists interfaces that are down; -4/-6 and --table choose routes.
        given += [name for name, on in (("-a", everything and route), ("-4", ipv4 and interfaces)) if on]
        given += [
            name
            for name, on in (("-6", ipv6 and interfaces), ("--table", table is not None and interfaces))
            if on
        ]
        if given:
            _fail(f"{' '.join(given)} {'does' if len(given) == 1 else 'do'} not go with {mode}")
        route_families = {"inet", "inet6"} if ipv4 == ipv6 else {"inet" if ipv4 else "inet6"}
        section: Literal["interfaces", "routes"] = "interfaces" if interfaces else "routes"
        _show_network(
            source,
            netns,
            chosen,
            section,
            route_families,
            table,
            everything,
            not no_header,
            text_options,
            all_netns,
        )
        return
    if table is not None:
        _fail("--table chooses routing tables: it goes with --route")
    where = _where(words)
    keywords = filter_keywords(" ".join(words)) if where is not None else frozenset()
    want_processes = processes or chosen is not Format.TABLE or not keywords.isdisjoint({"pid", "process"})
    # ss -s's counters, read before the sockets so that none of ours is among them.
    # One namespace's: not beside the counts of every namespace (--all-netns).
    kernel = _kernel_counters(netns) if summary and source in LIVE and not all_netns else None
    snap = open_source(
        source,
        netns=netns,
        processes=want_processes,
        sections=("sockets",),
        text_options=text_options,
        all_netns=all_netns,
    )
    if snap.sockets is None:
        _fail(f"{source}: this snapshot has no sockets section (taken with --sections)")
    if where is not None and "netns" in keywords:
        from .filter import compile_filter

        # netns LABEL: among these namespaces; one naming none of them is an error.
        where = compile_filter(" ".join(words), snap.namespaces or ())
    if summary:
        labels = None if snap.namespaces is None else namespace_labels(snap.namespaces)
        print(sockets_summary(snap.sockets, None if labels is not None else kernel, labels))
        if where is None and not (tcp or udp or raw or unix or ipv4 or ipv6):
            return  # ss -s alone is the summary alone
    protos = [p for p, wanted in zip(("tcp", "udp", "raw"), (tcp, udp, raw), strict=True) if wanted]
    families = [f for f, wanted in zip(("inet", "inet6", "unix"), (ipv4, ipv6, unix), strict=True) if wanted]
    kinds = ss_kinds(protos, families)
    # Prometheus's metrics count sockets in every state (its listeners are the listening ones).
    whole = chosen is Format.PROMETHEUS and not listening
    states = None if "state" in keywords or whole else ss_view(listening, everything)
    chosen_sockets = [
        s
        for s in snap.sockets
        if (s.proto, s.family) in kinds
        and (states is None or s.state in states)
        and (where is None or where(s))
    ]
    options = ListingOptions(
        header=not no_header, processes=processes, resolve=resolve and not numeric, extended=extended
    )
    listing = dataclasses.replace(snap, sockets=tuple(chosen_sockets))
    listing_format(chosen).write(sys.stdout, listing, "sockets", options)


def _socket_options(
    tcp: bool,
    udp: bool,
    raw: bool,
    unix: bool,
    listening: bool,
    processes: bool,
    resolve: bool,
    extended: bool,
    summary: bool,
) -> list[str]:
    """The options given that only sockets take (-i and --route refuse them)."""
    options = zip(
        ("-t", "-u", "-w", "-x", "-l", "-p", "-r", "-e", "-s"),
        (tcp, udp, raw, unix, listening, processes, resolve, extended, summary),
        strict=True,
    )
    return [name for name, on in options if on]


def _live_through(source: str, backend: str) -> str:
    """The live source ``--backend`` names, refusing one it contradicts."""
    from .backends import check_backend
    from .sources import LIVE

    check_backend(backend)
    wanted = f"live:{backend}"
    if source in ("live", wanted):
        return wanted
    if source in LIVE:
        _fail(f"--backend {backend} contradicts the source {source}")
    _fail(f"--backend reads the live system; {source} is a snapshot")


def _kernel_counters(netns: str | None) -> dict[str, int]:
    """/proc/net/sockstat's and snmp's counters of the namespace read (what ss -s reads)."""
    from .backends.proc import sockets as proc_sockets
    from .netns import entered

    with entered(netns):
        return proc_sockets.read_counters()


def _show_network(
    source: str,
    netns: str | None,
    chosen: "ListingChoice",
    section: Literal["interfaces", "routes"],
    families: set[str],
    table: str | None,
    everything: bool,
    header: bool,
    text_options: "TextOptions",
    all_netns: bool = False,
) -> None:
    """show -i / --route: one section of a snapshot or of the live system, netstat-like."""
    from .coverage import route_coverage
    from .formats import ListingOptions, listing_format
    from .formats.netstat import netstat_routes, parse_table, select_interfaces, select_routes
    from .model import RT_TABLE_MAIN
    from .sources import open_source

    wanted_table = None if table is None else parse_table(table)
    snap = open_source(
        source,
        netns=netns,
        processes=False,
        sections=(section,),
        text_options=text_options,
        all_netns=all_netns,
    )
    if section == "interfaces":
        if snap.interfaces is None:
            _fail(f"{source}: this snapshot has no interfaces section ({snap.why_not_taken()})")
        interfaces = select_interfaces(snap.interfaces, everything)
        options = ListingOptions(header=header)
        listing = dataclasses.replace(snap, sockets=None, routes=None, interfaces=tuple(interfaces))
    else:
        if snap.routes is None:
            _fail(f"{source}: this snapshot has no routes section ({snap.why_not_taken()})")
        covered = route_coverage(snap.header.sources)
        # A family the source holds no table of (netstat -rn saved alone: no IPv6) is not shown.
        held = {family for family in families if covered.tables(family) != frozenset()}
        if not held:
            words = " or ".join("IPv4" if family == "inet" else "IPv6" for family in sorted(families))
            _fail(f"{source}: its routes hold no {words} table ({covered.source})")
        families = held
        if table is None:  # netstat's view: what netstat -rn and -6rn list
            routes = netstat_routes(snap.routes, families)
        else:
            routes = select_routes(snap.routes, families, wanted_table)
        all_tables = table is not None and wanted_table != RT_TABLE_MAIN
        options = ListingOptions(
            header=header, families=tuple(families), all_tables=all_tables, null_entries=table is None
        )
        listing = dataclasses.replace(snap, sockets=None, interfaces=None, routes=tuple(routes))
        # A file written before /proc's every IPv6 table was read holds its main table only.
        older = table is None and "inet6" in families and covered.older
        if (all_tables and not covered.every_table) or older:
            print(f"sockdiff: note: these routes come from {covered.source}", file=sys.stderr)
    listing_format(chosen).write(sys.stdout, listing, section, options)


def _colour() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


@app.command()
def compare(
    old: Annotated[
        str | None,
        typer.Argument(help="A snapshot file, '-', a stored name or live:B (default: newest stored)."),
    ] = None,
    new: Annotated[str | None, typer.Argument(help="The same kinds of source (default: live).")] = None,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            help="Exit 1 when any of these differ: any,new,closed,changed,listening,interfaces,routes.",
        ),
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option("--ignore", help="Drop differences involving sockets this matches (repeatable)."),
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Keep only differences involving sockets this matches.")
    ] = None,
    fields: Annotated[
        str | None,
        typer.Option(
            "--fields",
            help=(
                "Fields compared: a comma list, +NAME to add, or all (default state,processes,inode;"
                " +counters compares interface counters)."
            ),
        ),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="text, json, junit, github, markdown or prometheus.")
    ] = "text",
    role: Annotated[
        bool,
        typer.Option(
            "--role",
            help="Compare what a role exposes, listeners only: by protocol, address class (loopback,"
            " wildcard, specific), port, namespace and program; no pids, inodes, connections, UDP"
            " client ports, interfaces or routes.",
        ),
    ] = False,
    reports: Reports = None,
    netns: Netns = None,
    input_format: InputFormat = None,
    lenient: Lenient = False,
    all_netns: AllNetns = False,
) -> None:
    """Report new, closed and changed sockets between two sources (exit 1 when --fail-on counts any)."""
    from .comparison import compare as compare_sources
    from .config import load_defaults
    from .differ import parse_fail_on, parse_fields
    from .formats import COMPARE_FORMATS, Format, ReportOptions, parse_format, report
    from .sources import TextOptions

    chosen = parse_format(output_format, COMPARE_FORMATS)
    if role and fields is not None:
        _fail("--role compares listeners by program name: it takes no --fields")
    extra = [_report_target(text, COMPARE_FORMATS) for text in reports or []]
    defaults = _defaults(load_defaults(), ignore is None, fail_on is None)
    kinds = parse_fail_on(fail_on, "--fail-on") if fail_on is not None else defaults.fail_on or ("any",)
    result = compare_sources(
        old,
        new,
        netns=netns,
        all_netns=all_netns,
        fields=parse_fields(fields, "--fields"),
        ignore=_expressions(ignore, defaults),
        only=_expressions(only or [], None),
        role=role,
        text_options=TextOptions(input_format, lenient),
    )
    _until_exit(result)
    from .output import OutputClosed, check_standard_output

    read = _read_files(result)
    check_standard_output(read)
    _check_reports(extra, read, "where the --format report goes")
    unwritten = _write_reports(
        extra, lambda extra_format: report(result, extra_format, ReportOptions(fail_on=kinds)), read
    )
    try:
        sys.stdout.write(report(result, chosen, ReportOptions(fail_on=kinds, colour=_colour())))
        sys.stdout.flush()  # the notes follow only a report that was written whole: an error is one line
    except OutputClosed:
        # The reader went away (| head): no message, but the exit code still says whether
        # --fail-on counted differences, which is what a CI step asks.
        raise typer.Exit(2 if unwritten else 1 if result.counted(kinds) else 0) from None
    if unwritten:
        raise typer.Exit(2)  # the notes follow only reports written whole: the errors are the lines
    from .formats.notes import ROLE_NOTE, route_tables_note, scope_note, sections_note

    if result.role:
        print(f"sockdiff: note: {ROLE_NOTE}", file=sys.stderr)
    if result.narrowed and result.scope is not None:
        print(f"sockdiff: note: {scope_note(result.scope)}", file=sys.stderr)
    for note in (sections_note(result), route_tables_note(result)):
        if note is not None:
            print(f"sockdiff: note: {note}", file=sys.stderr)
    if result.persistent_only and chosen is Format.TEXT:
        print(
            "sockdiff: note: live against live: only differences seen in two consecutive reads",
            file=sys.stderr,
        )
    if result.counted(kinds):
        raise typer.Exit(1)


def _check_reports(extra: "Sequence[tuple[Format, str]]", read: "Inputs", stdout_is: str) -> None:
    """Refuse, before any is written, a --report on standard output, on an input, or twice on a file."""
    from .output import Target, check_target, names_standard_output

    named: dict[Target, str] = {}
    for _, path in extra:
        if names_standard_output(path):
            # Two documents on one stream, or one replacing the other.
            _fail(f"--report {path}: that is standard output, {stdout_is}")
        target = check_target(path, read)
        if target is not None:
            if target in named:
                _fail(f"--report names one file twice: {named[target]} and {path}")
            named[target] = path


def _write_reports(
    extra: "Sequence[tuple[Choice, str]]", render: "Callable[[Choice], str]", read: "Inputs"
) -> bool:
    """Write each --report (``render``: its text in a format); whether one could not be written.

    A report that cannot be written is one line; the others (and standard output) are still
    written, and the exit code is 2: a CI step never reads a report lost as a pass.
    """
    from .output import OutputClosed

    unwritten = False
    for extra_format, path in extra:
        try:
            _write_text(path, render(extra_format), append=extra_format.lines, read=read)
        except OutputClosed:
            _diagnostic(f"sockdiff: {path}: cannot write: no process is reading it any more")
            unwritten = True
        except WriteError as err:
            _diagnostic(f"sockdiff: {err}")
            unwritten = True
    return unwritten


def _write_text(path: str, text: str, *, append: bool = False, read: "Inputs | None" = None) -> None:
    from .output import write_file

    write_file(path, text.encode(), append=append, read=read)


def _read_files(result: "Diff") -> "Inputs":
    """The files a comparison read (standard input too): no report may land on one."""
    from .output import inputs
    from .sources import LIVE

    origins = (side.origin for side in (result.old, result.new) if side.origin not in LIVE)
    return inputs("-" if origin == "<stdin>" else origin for origin in origins)


def _report_target(text: str, formats: "tuple[Choice, ...]") -> "tuple[Choice, str]":
    """``--report FORMAT=PATH``, FORMAT one of ``formats``."""
    from .formats import parse_format

    name, equals, path = text.partition("=")
    if not equals or not path:
        _fail(f"--report takes FORMAT=PATH, e.g. junit=sockdiff.xml, not {text!r}")
    return parse_format(name, formats), path


def _defaults(defaults: "Defaults", ignore_used: bool, fail_on_used: bool) -> "Defaults":
    """Say on stderr which configs were skipped, and which one changes what is ignored or counted."""
    from .formats.notation import escape

    for warning in defaults.warnings:
        print(f"sockdiff: warning: {escape(warning)}", file=sys.stderr)
    used = [
        name
        for name, applies in (
            ("ignore", ignore_used and defaults.ignore),
            ("fail_on", fail_on_used and defaults.fail_on),
        )
        if applies
    ]
    if used and defaults.origin is not None:
        print(f"sockdiff: note: {' and '.join(used)} from {escape(defaults.origin)}", file=sys.stderr)
    return defaults


def _expressions(values: Sequence[str] | None, defaults: "Defaults | None") -> list[str]:
    """``--ignore`` (with the project's ``defaults``) or ``--only``, as :func:`_ignored` takes
    them, but as expressions, checked here: compare compiles them again where ``netns
    LABEL`` resolves among its snapshots' namespaces."""
    from .filter import compile_filters

    if values is None:
        return list(defaults.ignore_texts) if defaults is not None else []
    texts = [text for text in values if text.strip()]
    compile_filters(texts)  # a malformed one is refused before any snapshot is read
    return texts


def _ignored(values: Sequence[str] | None, defaults: "Defaults") -> "Callable[[Socket], bool] | None":
    """``--ignore``: the project's list unless given; given, it replaces the list.

    An empty expression adds nothing, so ``--ignore ''`` alone clears the list.
    """
    from .filter import compile_filters

    if values is None:
        return defaults.ignore
    return compile_filters([text for text in values if text.strip()])


@app.command()
def watch(
    filter_words: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[FILTER]...",
            help="Watch only sockets this expression matches (interface, route and namespace lines are"
            " not narrowed, even by dev or netns: --sections sockets leaves them out).",
        ),
    ] = None,
    interval: Annotated[
        float,
        typer.Option(
            "--interval", "-i", help="Seconds between polls (0.05 to 86400).", min=0.05, max=_MAX_INTERVAL
        ),
    ] = 1.0,
    count: Annotated[
        int | None, typer.Option("--count", help="Stop after this many polls (after the first read).", min=1)
    ] = None,
    output_format: Annotated[str, typer.Option("--format", "-f", help="text or jsonl.")] = "text",
    backend: Annotated[str, typer.Option("--backend", "-b", help="netlink, proc or auto.")] = "auto",
    netns: Netns = None,
    all_netns: AllNetns = False,
    no_processes: Annotated[
        bool, typer.Option("--no-processes", help="Skip attributing sockets to processes.")
    ] = False,
    ignore: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore",
            help="Leave out sockets this matches (repeatable; replaces the project's list, '' clears it).",
        ),
    ] = None,
    buffer_size: Annotated[
        int,
        typer.Option(
            "--buffer-size", help="Receive buffer of each kernel event socket, in bytes (1 KiB to 2 GiB - 1)."
        ),
    ] = 1 << 20,
    sections: Annotated[
        str | None,
        typer.Option("--sections", help="Comma list of sockets, interfaces, routes (default: every one)."),
    ] = None,
    tcp: Tcp = False,
    udp: Udp = False,
    raw: Raw = False,
    unix: Unix = False,
) -> None:
    """Like netstat -c: print each change as it happens, and sockets that came and went between polls.

    Ctrl-C ends it with a summary line on stderr (exit 0).
    """
    from .config import load_defaults
    from .formats import WATCH_FORMATS, event_format, parse_format
    from .watching import watch as watch_sockets

    if math.isnan(interval):  # compares with neither bound, so the range lets it through
        _fail("--interval must be a number of seconds, not nan")
    chosen = parse_format(output_format, WATCH_FORMATS)
    watcher = watch_sockets(
        interval,
        count,
        backend=backend,
        netns=netns,
        all_netns=all_netns,
        protos=_protos(tcp, udp, raw, unix),
        where=" ".join(filter_words or []) or None,
        ignore=_ignored(ignore, _defaults(load_defaults(), ignore is None, False)),
        processes=not no_processes,
        buffer_size=buffer_size,
        sections=("sockets", "interfaces", "routes") if sections is None else _sections(sections),
    )
    events = event_format(chosen, _colour())
    out = sys.stdout
    warned = False  # of namespaces not listened to: once (the summary has the last count)
    try:
        for report in watcher:
            if watcher.unheard and not warned:
                warned = True
                print(f"sockdiff: warning: {_unheard(watcher.unheard)}", file=sys.stderr)
            if report.baseline is not None:
                # Each jsonl line says which host and boot it comes from, as the first read did.
                events = event_format(chosen, _colour(), report.baseline.header.identity())
                if watcher.deaf is not None:
                    print(
                        f"sockdiff: warning: {watcher.deaf}: sockets that open and close between"
                        " two polls go unseen",
                        file=sys.stderr,
                    )
                print(
                    f"sockdiff: watching every {interval:g} s (Ctrl-C to stop)", file=sys.stderr, flush=True
                )
            stamp = report.time
            if report.overrun is not None:
                print(
                    f"sockdiff: warning: {report.overrun} lost (receive buffer overrun, ENOBUFS);"
                    " polling now",
                    file=sys.stderr,
                    flush=True,
                )
                events.overrun(out, stamp, report.overrun)
            events.poll(out, stamp, report.diff, report.short_lived, report.namespaces)
            out.flush()
    except KeyboardInterrupt:
        pass  # the way to stop watching: the summary follows
    finally:
        watcher.close()
    print(f"sockdiff: {watcher.summary()}", file=sys.stderr)


def _unheard(count: int) -> str:
    from .backends.netlink.events import descriptor_limit

    return (
        f"{count} {'namespace' if count == 1 else 'namespaces'} not listened to: descriptor limit"
        f" {descriptor_limit()} (ulimit -n); their sockets that open and close between two polls go"
        " unseen, the polls still read them"
    )


@app.command("run", context_settings={"allow_interspersed_args": False})
def run_command(
    command: Annotated[list[str], typer.Argument(help="The command to run and its arguments (after --).")],
    fail_on: Annotated[
        str,
        typer.Option(
            "--fail-on", help="The sockets left open that count: listening (default), or new (any: all)."
        ),
    ] = "listening",
    ignore: Annotated[
        list[str] | None,
        typer.Option("--ignore", help="Never report sockets this matches (repeatable)."),
    ] = None,
    output_format: Annotated[
        str,
        typer.Option("--format", "-f", help="text, json, junit, github or markdown (written on stderr)."),
    ] = "text",
    reports: Reports = None,
    kill: Annotated[
        bool, typer.Option("--kill", help="Then stop what the command left running (SIGTERM, then SIGKILL).")
    ] = False,
    timeline: Annotated[
        bool,
        typer.Option("--timeline", help="Say when each leaked socket appeared, after the command's start."),
    ] = False,
) -> None:
    """Run CMD; report the sockets its process tree opened and still holds (exit 1 when any count)."""
    import shlex

    from .differ import parse_fail_on
    from .formats import RUN_FORMATS, RunOptions, parse_format, run_format
    from .leaks import LEAK_KINDS, LeakEngine, Window
    from .output import inputs
    from .running import command_words, run_tree

    if sys.stderr is None:  # started with stderr closed (2>&-): the report is lost, --kill still runs
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 -- for the process's life
    chosen: RunChoice = parse_format(output_format, RUN_FORMATS)
    extra = [_report_target(text, RUN_FORMATS) for text in reports or []]
    kinds = parse_fail_on(fail_on, "--fail-on", LEAK_KINDS)
    try:
        engine = LeakEngine(
            fail_on, ignore or (), session=Window(shlex.join(command_words(command)), "command")
        )
    except SockdiffError as err:
        _fail(f"--ignore: {err}")
    read = inputs(())
    _check_reports(extra, read, "which the command writes to")
    result = run_tree(command, engine, kinds)
    try:
        unwritten = _write_reports(
            extra, lambda extra_format: run_format(extra_format).render(result, RunOptions(timeline)), read
        )
        # On stderr: CMD's standard output is CMD's alone. A stderr that takes nothing (a closed
        # pipe) leaves nowhere to say so.
        colour = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
        with contextlib.suppress(OSError):
            sys.stderr.write(run_format(chosen).render(result, RunOptions(timeline, colour)))
            sys.stderr.flush()
    finally:  # what the tree left is stopped whatever became of the report
        if kill and result.left_running:
            _stop_leftovers(engine)
    # CMD's own code wins when it failed (a report lost is said above); else a lost report is 2.
    raise typer.Exit(result.exit_code or (2 if unwritten else 1 if result.leaks else 0))


def _stop_leftovers(engine: "LeakEngine") -> None:
    """``run --kill``: stop what the tree left running, and say so, a line a process."""
    import signal

    from .formats.leaks import holder_text
    from .running import KILL_GRACE_SECONDS, kill_leftovers

    stopping = kill_leftovers(engine)
    waited = f"{stopping.hurried.name}" if stopping.hurried else f"{KILL_GRACE_SECONDS:g}s"
    for holder, how in stopping.stopped:
        after = f" after {waited}" if how == signal.SIGKILL else ""
        _diagnostic(f"sockdiff run: stopped {holder_text(holder)} ({how.name}{after})")
    for holder in stopping.refused:
        _diagnostic(f"sockdiff run: could not stop {holder_text(holder)}: not permitted (another user's)")
    for holder in stopping.surviving:
        _diagnostic(f"sockdiff run: could not stop {holder_text(holder)}: still running after SIGKILL")


@app.command("list")
def list_() -> None:
    """List the stored snapshots, oldest first."""
    from . import store
    from .formats.notation import escape

    entries = store.entries()
    if not entries:
        print(escape(f"no stored snapshots in {store.store_dir()}"), file=sys.stderr)
        return
    names = [escape(entry.name) for entry in entries]
    width = max(len(name) for name in names)
    for name, entry in zip(names, entries, strict=True):
        # When it was taken, as its header says; a file that does not say shows '?'.
        taken_at = escape(entry.taken_at or "?").ljust(20)
        print(f"{name.ljust(width)}  {taken_at}  {entry.size:>10}  {escape(str(entry.path))}")


def _version(value: bool) -> None:
    if value:
        print(f"sockdiff {__version__}")
        raise typer.Exit


@app.callback()
def _options(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Snapshots of a Linux machine's sockets, and what changed between them."""
    if ctx.invoked_subcommand is None:
        print(ctx.get_help())
    elif ctx.invoked_subcommand != "watch":
        # Every other command is one short pass over records that hold no cycle: the
        # cyclic collector would only walk them (~50 ms of a compare of two 100k
        # snapshots). main() turns it back on; watch, which runs for days, keeps it.
        gc.disable()


def _warning_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    _diagnostic(f"sockdiff: warning: {message}")


def _diagnostic(line: str) -> None:
    """One line on stderr; a stderr that cannot take it loses it, and nothing else."""
    from .formats.notation import escape

    # Messages quote names with repr() or as they are: either way, one line.
    text = escape(line, backslash=False) + "\n"
    stream = sys.stderr
    with contextlib.suppress(OSError, ValueError):
        if stream is not None:
            stream.write(text)
            stream.flush()
        else:
            os.write(2, text.encode("utf-8", "backslashreplace"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0, 1 for counted differences, 2 for errors).

    Standard output is replaced, for the run, by a stream that checks every
    write (:mod:`sockdiff.output`): a short write or a full disk is an error,
    and standard output's reader going away (``| head``) ends the run quietly
    with 0 (compare catches it to keep its own code; a ``--report``'s is an error).
    """
    from . import output

    warnings.showwarning = _warning_line
    output.guard_standard_streams()
    original = sys.stdout
    # Only the real standard output (None when it was closed); not a test's capture.
    checked = original is sys.__stdout__
    if checked:
        sys.stdout = output.standard_output()
    collecting = gc.isenabled()
    try:
        args = sys.argv[1:] if argv is None else list(argv)
        result = _invoked(args)(args=args, prog_name="sockdiff", standalone_mode=False)
        sys.stdout.flush()  # what is still buffered fails here, while errors still become one line
    except output.OutputClosed:
        return 0
    except SockdiffError as err:
        _diagnostic(f"sockdiff: {err}")
        return 2
    except typer.TyperException as err:
        # Usage mistakes (typer's click): one line, pointing at the help.
        context = getattr(err, "ctx", None)
        command = context.command_path if context is not None else "sockdiff"
        message = " ".join(err.format_message().split())
        _diagnostic(f"sockdiff: {message} (see '{command} --help')")
        return 2
    except typer.Abort:
        _diagnostic("sockdiff: aborted")
        return 2
    except KeyboardInterrupt:
        return 130
    except RecursionError:
        # Input nested beyond what sockdiff parses; each parser bounds its own depth,
        # this is the last word should one be missed.
        _diagnostic("sockdiff: input nested too deeply")
        return 2
    finally:
        if checked:
            sys.stdout = original
        if collecting:
            gc.enable()
    return result if isinstance(result, int) else 0


def _invoked(args: Sequence[str]) -> typer.Typer:
    """``app`` with only the command ``args`` name first, when they name one.

    typer builds a click command (every option's parser) for each registered
    command on every run, ~2 ms each; the others are never used. The same app
    otherwise: its callback and settings, the command's own declaration. Anything
    else (``--help``, ``--version``, a mistyped name) gets the whole app, so help
    and suggestions list every command.
    """
    if not args:
        return app
    chosen = [
        command
        for command in app.registered_commands
        if command.callback is not None
        and args[0] == (command.name or command.callback.__name__.lower().replace("_", "-"))
    ]
    if not chosen:
        return app
    narrowed = copy.copy(app)
    narrowed.registered_commands = chosen
    return narrowed


class _Exit:
    """What the console script lets die with the process: see run(). None where
    main() is called as a library, which keeps nothing."""

    kept: list[object] | None = None


def _until_exit(value: object) -> None:
    """Keep ``value`` alive until the console script exits, if it is the caller."""
    if _Exit.kept is not None:
        _Exit.kept.append(value)


def run() -> NoReturn:
    """Console-script entry point.

    Exits without tearing down the interpreter: freeing a few hundred thousand
    records one by one costs ~50 ms and achieves nothing at exit. The commands
    hand their snapshots to :func:`_until_exit` for the same reason: freed when
    the command returns, 100k records would cost ~10 ms more.
    """
    _Exit.kept = []
    code = main()
    for stream in (sys.stdout, sys.stderr):  # None where the descriptor was closed
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    os._exit(code)

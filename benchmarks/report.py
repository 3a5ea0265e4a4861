"""The report: the goals judged once (:func:`evaluate`), then rendered.

:func:`evaluate` turns a finished :class:`measure.Bench` into :class:`Results`:
one :class:`Goal` a judged figure, the growth of every command's cost, and where
the time of each snapshot command goes. :func:`markdown_report` and
:func:`json_document` only render those; :func:`readme_section` is the part of
the markdown that README.md's performance section carries, and
:func:`replace_readme_section` puts it there.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from measure import PAIRS, Bench, PluginOverhead, Series, Stage, Watch, median

#: The per-socket cost may grow this much from the smallest to the largest size and
#: still count as linear (start-up cost excluded; see growth()).
LINEAR_TOLERANCE = 1.3
#: Goals (issue 21, and issue 11's snapshot memory): ratios of sockdiff's median to
#: its reference's, and limits.
RATIO_GOALS = {"netlink": 1.25, "netlink pure": 1.5, "proc": 1.25, "netlink -p": 0.4, "proc -p": 0.4}
EMPTY_NETNS_GOAL = 6.0
COMPARE_WALL_GOAL = 0.4
COMPARE_PURE_WALL_GOAL = 0.45
COMPARE_RSS_GOAL_MB = 250.0
SNAPSHOT_RSS_GOAL_MB = 100.0
WATCH_SHARE_GOAL = 0.15
WATCH_PURE_SHARE_GOAL = 0.20
#: README.md's performance table sits between these two lines.
README_BEGIN = "<!-- benchmark table: begin (benchmarks/bench.py --readme README.md writes it) -->"
README_END = "<!-- benchmark table: end -->"

Unit = Literal["ratio", "s", "MB", "core"]


@dataclasses.dataclass(frozen=True, slots=True)
class Goal:
    """One judged figure: ``value`` (in ``unit``) against ``limit``."""

    key: str
    what: str
    sockdiff: str
    reference: str
    value: float | None
    limit: float
    unit: Unit
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool | None:
        return None if self.value is None else self.value <= self.limit


@dataclasses.dataclass(frozen=True, slots=True)
class Results:
    """Everything the report says, computed once."""

    env: dict[str, Any]
    settings: dict[str, Any]
    census: dict[str, Any]
    goals: list[Goal]
    growth: list[dict[str, Any]]
    breakdown: list[tuple[str, list[float | None]]]
    breakdown_columns: list[str]
    watch: Watch | None
    plugin: PluginOverhead | None
    run: PluginOverhead | None
    stages: list[Stage]

    @property
    def all_ok(self) -> bool:
        return all(goal.ok for goal in self.goals)


def fmt(value: float | None, unit: Unit) -> str:
    if value is None:
        return "error"
    match unit:
        case "ratio":
            return f"{value:.2f}"
        case "s":
            return f"{value:.3f} s"
        case "MB":
            return f"{value:.0f} MB"
        case "core":
            return f"{value:.1%} of a core"


def size_label(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def _ratio_goal(key: str, stage: Stage, limit: float, where: str) -> Goal:
    """sockdiff's runs over its reference's, pair by pair (they ran in turns): the median."""
    sa, sb = stage.series[key]
    per_run = [a / b for a, b in zip(sa.walls, sb.walls, strict=False)]
    value = None if sa.error or sb.error else median(per_run)
    return Goal(
        key=f"{key} {where}".strip(),
        what=f"`{sa.command.removeprefix('sockdiff ')}` / `{sb.command}`{where and ', ' + where}",
        sockdiff=fmt(sa.wall, "s"),
        reference=fmt(sb.wall, "s"),
        value=value,
        limit=limit,
        unit="ratio",
        detail={
            "sockdiff": sa.to_json(),
            "reference": sb.to_json(),
            "ratio_of_medians": None if sa.wall is None or sb.wall is None else sa.wall / sb.wall,
            "run_ratios": per_run,
        },
    )


def goals(bench: Bench, main: Stage) -> list[Goal]:
    """Every goal of issue 21 (and issue 11's snapshot memory), judged on one run's medians."""
    size = size_label(main.target)
    out = [_ratio_goal(p.key, main, RATIO_GOALS[p.key], size) for p in PAIRS]
    empty = _ratio_goal("netlink", bench.stages[0], EMPTY_NETNS_GOAL, "empty namespace")
    empty.detail.update(typer_floor(bench.stages[0]))
    out.append(empty)
    cmp = main.compare or Series("compare", error="not measured")
    what = f"`compare A B --format json`, two {size} snapshots"
    detail = {"sockdiff": cmp.to_json(), "diff_summary": main.diff_summary}
    out.append(Goal("compare wall", what, fmt(cmp.wall, "s"), "", cmp.wall, COMPARE_WALL_GOAL, "s", detail))
    pure = main.compare_pure or Series("compare", error="not measured")
    out.append(
        Goal(
            "compare wall pure",
            what + ", pure Python",
            fmt(pure.wall, "s"),
            "",
            pure.wall,
            COMPARE_PURE_WALL_GOAL,
            "s",
            {"sockdiff": pure.to_json()},
        )
    )
    out.append(
        Goal(
            "compare rss",
            what + ", peak RSS",
            fmt(cmp.rss_mb, "MB"),
            "",
            cmp.rss_mb,
            COMPARE_RSS_GOAL_MB,
            "MB",
        )
    )
    snapshots = [main.series[p.key][0] for p in PAIRS]
    worst = max(snapshots, key=lambda s: math.inf if s.rss_mb is None else s.rss_mb)
    worst_command = worst.command.removeprefix("sockdiff ")
    out.append(
        Goal(
            "snapshot rss",
            f"peak RSS of a {size} snapshot (the largest of them: `{worst_command}`)",
            fmt(worst.rss_mb, "MB"),
            "",
            worst.rss_mb,
            SNAPSHOT_RSS_GOAL_MB,
            "MB",
            {s.command: s.rss_mb for s in snapshots},
        )
    )
    out.append(_watch_goal("watch", bench.watch, size, WATCH_SHARE_GOAL, ""))
    out.append(_watch_goal("watch pure", bench.watch_pure, size, WATCH_PURE_SHARE_GOAL, ", pure Python"))
    return out


def _watch_goal(key: str, watch: Watch | None, size: str, limit: float, how: str) -> Goal:
    usage = watch.usage if watch else None
    return Goal(
        key,
        f"`watch -i 1` at {f'{watch.tcp:,} TCP sockets' if watch else size}, no changes{how}",
        fmt(usage.share if usage else None, "core"),
        "",
        usage.share if usage else None,
        limit,
        "core",
        {"error": watch.error if watch else "not measured"}
        if usage is None
        else {"cpu_s": usage.cpu, "wall_s": usage.wall, "cpu_before_window_s": usage.startup_cpu},
    )


def typer_floor(empty: Stage) -> dict[str, Any]:
    """The empty-namespace goal's floor: a typer app with the snapshot command's options and no
    work (typer_floor.py), over ``ss``, run by run in turn with the goal's own pair."""
    floor = empty.startup.get("typer")
    sockdiff, ss = empty.series["netlink"]
    if floor is None or floor.error or ss.error:
        return {"typer_floor": None}
    ratios = [a / b for a, b in zip(floor.walls, ss.walls, strict=False)]
    # What sockdiff adds to the floor, run by run (its modules, pyroute2, msgspec, the work).
    above = [a - b for a, b in zip(sockdiff.walls, floor.walls, strict=False)]
    return {
        "typer_floor": floor.to_json(),
        "typer_floor_ratio": median(ratios),
        "above_floor_s": None if sockdiff.error else median(above),
    }


def growth(stages: Sequence[Stage]) -> list[dict[str, Any]]:
    """Per-socket cost of every command at every size, and how it grows.

    ``raw``: seconds per socket at the largest size over the same at the smallest.
    ``net``: the same after subtracting the start-up cost (interpreter, imports),
    which would otherwise make any command with a fixed start-up look sublinear.
    At 10k sockets the cost above start-up is a few tens of milliseconds, so the
    start-up is measured in turn with the runs it is taken from: the same command
    with -x, reading only the namespace's few UNIX sockets (``Stage.baselines``),
    or compare of two empty snapshots. The -p variants cannot be measured that way
    (their scan of /proc/PID/fd would see the workers' descriptors), nor can the
    references: theirs is the cost measured in the empty namespace (stage 0).
    """
    base = stages[0]
    sized = [s for s in stages[1:] if s.tcp > 0]
    rows: list[dict[str, Any]] = []
    keys: list[tuple[str, int]] = [(k, i) for k in base.series for i in (0, 1)]
    for key, side in [*keys, ("compare", 0)]:

        def pick(stage: Stage, key: str = key, side: int = side) -> Series | None:
            return stage.compare if key == "compare" else stage.series[key][side]

        series0 = pick(base)
        assert series0 is not None
        t0 = series0.wall
        row: dict[str, Any] = {
            "command": series0.command.split(" (")[0],
            "sockdiff": side == 0,
            "startup_s": t0,
            "sizes": [],
        }
        for stage in sized:
            series = pick(stage)
            t = series.wall if series else None
            baseline = stage.baselines.get(key) if side == 0 else None
            start = baseline.wall if baseline else t0
            row["sizes"].append(
                {
                    "target": stage.target,
                    "tcp_sockets": stage.tcp,
                    "median_s": t,
                    "startup_s": start,
                    "startup_from": baseline.command if baseline else "the empty namespace",
                    "ms_per_1k": None if t is None else t / stage.tcp * 1e6,
                    "net_ms_per_1k": None if t is None or start is None else (t - start) / stage.tcp * 1e6,
                    "maxrss_mb": series.rss_mb if series else None,
                }
            )
        first, last = (row["sizes"][0], row["sizes"][-1]) if len(row["sizes"]) >= 2 else (None, None)
        row["raw_ratio"] = row["net_ratio"] = row["linear"] = None
        if first and last and first["median_s"] is not None and last["median_s"] is not None:
            row["raw_ratio"] = last["ms_per_1k"] / first["ms_per_1k"]
            if first["net_ms_per_1k"] and first["net_ms_per_1k"] > 0:
                row["net_ratio"] = last["net_ms_per_1k"] / first["net_ms_per_1k"]
                row["linear"] = row["net_ratio"] <= LINEAR_TOLERANCE
        rows.append(row)
    return rows


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def breakdown(bench: Bench, main: Stage) -> tuple[list[str], list[tuple[str, list[float | None]]]]:
    """Where each snapshot command's time goes, from differences of medians: the
    launch, the interpreter, the CLI loaded, the rest of the start-up (the empty
    namespace), the sockets, the process scan."""
    empty = bench.stages[0]
    launch = bench.launch_overhead
    interpreter = empty.startup.get("interpreter")
    cli = empty.startup.get("cli")
    t_interp = interpreter.wall if interpreter else None
    t_cli = cli.wall if cli else None
    columns: list[str] = []
    cells: list[list[float | None]] = []
    for key in ("netlink", "proc"):
        with_p = f"{key} -p"
        for side in (0, 1):
            first = empty.series[key][side]
            columns.append(first.command.removeprefix("sockdiff ").replace(" -o -", ""))
            t_empty, t_full = first.wall, main.series[key][side].wall
            t_with_p = main.series[with_p][side].wall
            python_side = side == 0
            cells.append(
                [
                    launch,
                    _minus(t_interp, launch) if python_side else None,
                    _minus(t_cli, t_interp) if python_side else None,
                    _minus(t_empty, t_cli if python_side else launch),
                    _minus(t_full, t_empty),
                    _minus(t_with_p, t_full),
                    t_with_p,
                ]
            )
    size = size_label(main.target)
    labels = [
        "launch (`ip netns exec`, in every figure)",
        "interpreter (`python -c pass`)",
        "CLI loaded (`sockdiff --version` less the interpreter)",
        "the rest of a run in an empty namespace",
        f"{size} sockets (the {size} run less the empty one)",
        "process attribution (`-p` less without)",
        f"total with `-p` at {size}",
    ]
    return columns, [(label, [row[i] for row in cells]) for i, label in enumerate(labels)]


def evaluate(bench: Bench, env: dict[str, Any]) -> Results:
    """Judge every goal once; the renderers below only lay out what this returns."""
    args = bench.args
    main = next(s for s in bench.stages if s.target == args.sockets)
    overhead = bench.launch_overhead
    env = {
        **env,
        "launch overhead": "unknown"
        if overhead is None
        else f"{overhead * 1000:.1f} ms (in every wall time)",
        "peak RSS from": "GNU time %M" if bench.gnu_time else "wait4 ru_maxrss (floor: the bench's own RSS)",
    }
    columns, rows = breakdown(bench, main)
    return Results(
        env=env,
        settings={
            "sockets": args.sockets,
            "sizes": args.sizes,
            "runs": args.runs,
            "slow_runs": args.slow_runs,
            "small_runs": args.small_runs,
            "warmup": args.warmup,
            "timeout": args.timeout,
            "watch_settle_s": args.watch_settle,
            "watch_seconds": args.watch_seconds,
            "linear_tolerance": LINEAR_TOLERANCE,
        },
        census=main.census,
        goals=goals(bench, main),
        growth=growth(bench.stages),
        breakdown=rows,
        breakdown_columns=columns,
        watch=bench.watch,
        plugin=bench.plugin,
        run=bench.run_cost,
        stages=bench.stages,
    )


# ---------------------------------------------------------------------- rendering


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _num(value: float | None, unit: str = "") -> str:
    return "—" if value is None else f"{value:.2f}{unit}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.0f} ms"


def verdict(ok: bool | None) -> str:
    return "error" if ok is None else ("met" if ok else "MISSED")


def _limit(goal: Goal) -> str:
    return f"<= {fmt(goal.limit, goal.unit).removesuffix(' of a core')}"


def _own_line(what: str, measured: PluginOverhead | None) -> str:
    if measured is None:
        return f"{what}: not measured."
    if measured.result is None:
        return f"{what}: {measured.error}."
    return f"{what}: {measured.result.get('summary', measured.result)}"


def _floor_line(results: Results) -> str:
    """What any typer CLI pays in the empty namespace: the empty-namespace goal's floor."""
    (empty,) = [g for g in results.goals if g.key == "netlink empty namespace"]
    floor, ratio = empty.detail.get("typer_floor"), empty.detail.get("typer_floor_ratio")
    if not floor or ratio is None:
        return "\nThe floor of the empty-namespace goal (`benchmarks/typer_floor.py`): not measured."
    above = empty.detail.get("above_floor_s")
    return (
        f"\nThe floor of the empty-namespace goal: a typer app with the snapshot command's options and "
        f"no work (`benchmarks/typer_floor.py`) takes {fmt(floor['median_s'], 's')}, {ratio:.2f}x `ss` "
        "(the interpreter, typer imported, one command built and its options parsed)"
        + ("." if above is None else f"; sockdiff's netlink snapshot takes {above * 1000:.1f} ms more.")
    )


def readme_section(results: Results) -> str:
    """The date, the machine, the goals and where the time goes: README.md's table."""
    env, settings, census = results.env, results.settings, results.census
    states = ", ".join(f"{v:,} {k}" for k, v in census["tcp_states"].items())
    slow = (
        f" ({settings['slow_runs']} for the `netstat -p` pair)"
        if settings["slow_runs"] != settings["runs"]
        else ""
    )
    out = [
        f"Measured {env['date']} on {env['nproc']} cores ({env['cpu']}), {env['memory_gib']} GiB, "
        f"kernel {env['kernel']}, {env['python']}, {env['ss']}, {env['netstat']}; "
        f"{census['tcp']:,} TCP sockets ({states}) in {census['all']:,} sockets of all kinds. "
        f"Medians of {settings['runs']} alternating runs{slow}, {settings['small_runs']} in the empty "
        "namespace; a ratio is the median of the run-by-run ratios. "
        f"Other load during the run: {env.get('other load', 'unknown')}.\n",
        table(
            ["what", "sockdiff", "reference", "measured", "goal", ""],
            [
                [g.what, g.sockdiff, g.reference or "—", fmt(g.value, g.unit), _limit(g), verdict(g.ok)]
                for g in results.goals
            ],
        ),
        _floor_line(results),
        "\nWhere the time goes (medians, differences of the runs above):\n",
        table(
            ["phase", *(f"`{c}`" for c in results.breakdown_columns)],
            [[label, *(_ms(v) for v in values)] for label, values in results.breakdown],
        ),
    ]
    judged = [g for g in results.growth if g["sockdiff"] and g["net_ratio"] is not None]
    if judged:
        low = min(g["net_ratio"] for g in judged)
        high = max(g["net_ratio"] for g in judged)
        sized = [s for s in results.stages[1:] if s.tcp > 0]
        out.append(
            f"\nGrowth {size_label(sized[0].target)} -> {size_label(sized[-1].target)}, per socket, "
            f"start-up excluded (1.0 is linear): {low:.2f}-{high:.2f} for sockdiff's commands."
        )
    out.append("\n" + _own_line("pytest plugin overhead (`benchmarks/plugin_overhead.py`)", results.plugin))
    out.append("\n" + _own_line("sockdiff run overhead (`benchmarks/run_overhead.py`)", results.run))
    return "\n".join(out) + "\n"


def markdown_report(results: Results) -> str:
    """The whole report: README.md's section, then growth, medians and the machine."""
    out: list[str] = []
    env, settings = results.env, results.settings
    if str(env.get("sockdiff source", "")).startswith("CHANGED"):
        out.append("**Warning: sockdiff's source changed during the run; these results mix versions.**\n")
    out.append(f"## sockdiff benchmark: {results.census['tcp']} TCP sockets\n")
    out.append(readme_section(results))

    sized = [s for s in results.stages[1:] if s.tcp > 0]
    sizes = [size_label(s.target) for s in sized]
    span = f"{sizes[0]} -> {sizes[-1]}" if len(sizes) >= 2 else "n/a"
    header = ["command", "start-up s @" + " / ".join(["0", *sizes])]
    header += [f"ms/1k @{s}" for s in sizes] + [f"net ms/1k @{s}" for s in sizes]
    header += ["raw ratio", "net ratio", f"linear (<= {LINEAR_TOLERANCE})"]
    grow_rows = []
    for g in results.growth:
        name = f"`{g['command']}`" if g["sockdiff"] else g["command"]
        starts = [g["startup_s"], *(z["startup_s"] for z in g["sizes"])]
        cells = [name, " / ".join("—" if t is None else f"{t:.3f}" for t in starts)]
        cells += [_num(z["ms_per_1k"]) for z in g["sizes"]] + [_num(z["net_ms_per_1k"]) for z in g["sizes"]]
        linear = "(reference)" if not g["sockdiff"] else "n/a" if g["linear"] is None else str(g["linear"])
        cells += [_num(g["raw_ratio"]), _num(g["net_ratio"]), linear]
        grow_rows.append(cells)
    out.append(f"\n### Growth {span}\n")
    out.append(
        "ms/1k: median wall time per 1,000 TCP sockets. net: after subtracting the start-up time; for "
        "the sockdiff commands without -p that is the same command with -x (the namespace's few UNIX "
        "sockets only; compare: of two empty snapshots), run in turn with them at each size; otherwise "
        "the time in the empty namespace. Ratios: largest size over smallest; 1.0 is linear.\n"
    )
    out.append(table(header, grow_rows))

    out.append("\n### Medians at each size\n")
    med_header = (
        ["command"]
        + [f"{size_label(s.target)} ({s.tcp} TCP)" if s.target else "empty" for s in results.stages]
        + ["peak RSS @largest"]
    )
    med_rows = [
        [g["command"], fmt(g["startup_s"], "s")]
        + [fmt(z["median_s"], "s") for z in g["sizes"]]
        + [_num(g["sizes"][-1]["maxrss_mb"] if g["sizes"] else None, " MB")]
        for g in results.growth
    ]
    out.append(table(med_header, med_rows))
    main = next(s for s in results.stages if s.target == settings["sockets"])
    if main.diff_summary:
        out.append(f"\ncompare's diff at {size_label(main.target)}: {main.diff_summary}")
    out.append("\n### Machine\n")
    out.append(table(["", ""], [[k, str(v)] for k, v in env.items()]))
    return "\n".join(out) + "\n"


def json_document(results: Results) -> dict[str, Any]:
    """The same results as one JSON document, raw runs included."""
    return {
        "format": "sockdiff.bench",
        "version": 2,
        "environment": results.env,
        "settings": results.settings,
        "census": results.census,
        "goals": [
            {
                "key": g.key,
                "what": g.what,
                "value": g.value,
                "unit": g.unit,
                "limit": g.limit,
                "pass": g.ok,
                **g.detail,
            }
            for g in results.goals
        ],
        "breakdown": {
            "columns": results.breakdown_columns,
            "rows": [{"phase": label, "seconds": values} for label, values in results.breakdown],
        },
        "growth": results.growth,
        "watch": None if results.watch is None else dataclasses.asdict(results.watch),
        "plugin_overhead": None if results.plugin is None else dataclasses.asdict(results.plugin),
        "run_overhead": None if results.run is None else dataclasses.asdict(results.run),
        "all_pass": results.all_ok,
        "stages": [
            {
                "target": s.target,
                "census": s.census,
                "diff_summary": s.diff_summary,
                "series": {k: [a.to_json(), b.to_json()] for k, (a, b) in s.series.items()},
                "baselines": {k: b.to_json() for k, b in s.baselines.items()},
                "startup": {k: b.to_json() for k, b in s.startup.items()},
                "compare": s.compare.to_json() if s.compare else None,
            }
            for s in results.stages
        ],
    }


def replace_readme_section(readme: Path, section: str) -> None:
    """Put ``section`` between README.md's two marker lines (BenchError-free: a
    missing marker is a ValueError for the caller to word)."""
    text = readme.read_text()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f"{readme} has no lines {README_BEGIN!r} ... {README_END!r}")
    head = text[: begin + len(README_BEGIN)]
    readme.write_text(f"{head}\n{section}{text[end:]}")

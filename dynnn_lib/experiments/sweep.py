"""Sweeps: a grid of configurations from one YAML file, run locally or on Ray, reported per grid point.

    dynnn sweep params/sweep_example.yaml [--dry-run] [--executor local|ray] [--address auto|HOST:PORT]

The spec (every key but ``grid``/``list`` optional)::

    name: schedules          # report folder reports/sweeps/<name>/ (default: the file's stem)
    preset: tiny             # a named starting point (config.PRESETS)
    base:                    # RunConfig fields over the preset (or a path to a YAML file of them)
      method: combined
      data: {n_tasks: 4}
    grid:                    # the cartesian product of these values (field paths may be nested: data.n_tasks)
      expand_at: [[1], [2], [1, 2]]
      kd_head: [best, worst]
      seed: {range: 3}       # {range: N} = 0..N-1; {range: [a, b]} = a..b-1; or a plain list [0, 4, 7]
    list:                    # optional explicit points (partial configurations), crossed with the grid
      - {method: kd}
      - {method: combined, expand_at: [1]}
    metric: overall          # reported metric (a registered metric, plugins' too; "square" = overall), default overall

Every point is built into a validated RunConfig before anything runs: an unknown field, an empty grid or a value
that fails validation is a one-line error naming the field.  Seeds are the replicates: the report groups the runs
by every swept field except ``seed`` and gives mean ± 95 % Student-t interval (stats.t95) of the metric.

Reports (``reports/sweeps/<name>/``): ``table.md`` (one row per grid point), ``runs.csv`` (one row per run),
``figure.html`` (plotly: metric over the grid with its interval; needs the ``notebooks`` extra) and ``sweep.json``,
the manifest :func:`load_sweep` reads back (notebooks: ``load_sweep("schedules").rows``).
"""
from __future__ import annotations

import contextlib
import copy
import csv
import io
import itertools
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from dynnn_lib.core.config import PRESETS, RENAMED, RunConfig, from_dict, read_yaml, set_path
from dynnn_lib.core.errors import ConfigError, DataError
from dynnn_lib.evaluation.metrics import matrix_metrics

SPEC_FIELDS = ("name", "preset", "base", "grid", "list", "metric")
METRIC_ALIASES = {"square": "overall"}
SCHEMA = "dynnn.sweep/1"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def default_reports_dir() -> Path:
    return Path(os.environ.get("DYNNN_SWEEPS", os.path.join("reports", "sweeps")))


# ------------------------------------------------------------------ spec
@dataclass
class SweepSpec:
    name: str
    base: dict                                   # plain RunConfig values (preset and base merged)
    grid: dict[str, list]                        # dotted field path -> values (ranges expanded)
    points: list[dict[str, Any]] = field(default_factory=list)  # explicit points: dotted path -> value
    metric: str = "overall"
    source: str = ""                             # the file it came from (for error messages)

    def to_dict(self) -> dict:
        return {"name": self.name, "base": self.base, "grid": self.grid, "list": self.points, "metric": self.metric}


@dataclass
class SweepPoint:
    """One run of the sweep: the swept values (dotted paths, ``seed`` included) and its validated configuration."""

    assign: dict[str, Any]
    config: RunConfig

    @property
    def group(self) -> tuple:
        """The grid point it belongs to: every swept value but the seed."""
        return tuple((k, _hashable(v)) for k, v in self.assign.items() if k != "seed")


def _hashable(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v


def _deep_merge(into: dict, over: Mapping) -> dict:
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(into.get(k), dict):
            _deep_merge(into[k], v)
        else:
            into[k] = copy.deepcopy(v)
    return into


def _flatten(mapping: Mapping, prefix: str = "", leaf=lambda v: not isinstance(v, Mapping)) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in mapping.items():
        path = f"{prefix}{k}"
        if leaf(v):
            out[path] = v
        else:
            out.update(_flatten(v, path + ".", leaf))
    return out


def _range(field_name: str, spec: Any) -> list[int]:
    r = spec.get("range")
    args = r if isinstance(r, list) else [r]
    if not 1 <= len(args) <= 3 or any(isinstance(a, bool) or not isinstance(a, int) for a in args):
        raise ConfigError(f"grid field {field_name!r}: range must be N, [start, stop] or [start, stop, step] "
                          f"(integers), got {r!r}")
    if len(args) == 3 and args[2] == 0:
        raise ConfigError(f"grid field {field_name!r}: range step must not be 0")
    return list(range(*args))


def _values(field_name: str, values: Any) -> list:
    if isinstance(values, Mapping) and set(values) == {"range"}:
        values = _range(field_name, values)
    elif not isinstance(values, list):
        raise ConfigError(f"grid field {field_name!r} must be a list of values or {{range: N}}, got {values!r}")
    if not values:
        raise ConfigError(f"grid field {field_name!r} has no values: give at least one")
    return values


def parse_spec(data: Any, source: str = "sweep", name: str | None = None, base_dir: Path | None = None) -> SweepSpec:
    """Validate the structure of a sweep spec (a mapping, e.g. read from YAML); the values are checked by
    :func:`expand`."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a sweep spec must be a mapping with at least 'grid' or 'list'")
    unknown = sorted(set(map(str, data)) - set(SPEC_FIELDS))
    if unknown:
        raise ConfigError(f"{source}: unknown sweep field {unknown[0]!r}; valid fields: {', '.join(SPEC_FIELDS)}")
    name = data.get("name") or name or "sweep"
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{source}: name={name!r} must be letters, digits, '.', '_' or '-' (it names the report folder)")
    base: dict = {}
    preset = data.get("preset")
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"{source}: preset={preset!r} is not valid; choose one of: {', '.join(sorted(PRESETS))}")
        base = copy.deepcopy(PRESETS[preset])
    over = data.get("base") or {}
    if isinstance(over, str):  # a YAML file of RunConfig fields, relative to the spec
        p = Path(over)
        p = p if p.is_absolute() or base_dir is None else base_dir / p
        over = read_yaml(p, f"{source}: base config file") or {}
    if not isinstance(over, Mapping):
        raise ConfigError(f"{source}: base must be a mapping of RunConfig fields or the path of a YAML file of them")
    _deep_merge(base, over)

    grid_in = data.get("grid") or {}
    if not isinstance(grid_in, Mapping):
        raise ConfigError(f"{source}: grid must be a mapping of field -> list of values")
    is_leaf = lambda v: not isinstance(v, Mapping) or set(v) == {"range"}  # noqa: E731
    grid = {k: _values(k, v) for k, v in _flatten(grid_in, leaf=is_leaf).items()}
    points_in = data.get("list") or []
    if not isinstance(points_in, list) or not all(isinstance(p, Mapping) for p in points_in):
        raise ConfigError(f"{source}: list must be a list of mappings (partial configurations), e.g. - {{method: kd}}")
    points = [_flatten(p) for p in points_in]
    if not grid and not any(points):
        raise ConfigError(f"{source}: the sweep is empty: give a non-empty grid (field: [values]) or list of points")
    metric = data.get("metric", "overall")
    metric = METRIC_ALIASES.get(metric, metric)
    if metric not in matrix_metrics():
        raise ConfigError(f"{source}: metric={data.get('metric')!r} is not valid; choose one of: "
                          f"{', '.join(matrix_metrics())} (square = overall)")
    return SweepSpec(name=name, base=base, grid=grid, points=points, metric=metric, source=source)


def load_spec(path: str | Path) -> SweepSpec:
    path = Path(path)
    return parse_spec(read_yaml(path, "sweep file"), str(path), path.stem, path.parent)


@contextlib.contextmanager
def thread_count(threads: int | None) -> Iterator[int]:
    """Set DYNNN_THREADS for the block (keys depend on it: the driver must compute them with the workers' count)."""
    from dynnn_lib.core.fingerprint import threads as current

    before = os.environ.get("DYNNN_THREADS")
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"--threads {threads!r}: need a positive number of torch threads per run")
        os.environ["DYNNN_THREADS"] = str(threads)
    try:
        yield current()
    finally:
        if before is None:
            os.environ.pop("DYNNN_THREADS", None)
        else:
            os.environ["DYNNN_THREADS"] = before


def _check_path(base_cfg: RunConfig, dotted: str, source: str) -> None:
    """An unknown field is an error naming it (a mapping-valued field such as method parameters takes any key)."""
    node: Any = base_cfg.to_dict()
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        where = ".".join(parts[:i])
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: unknown field {dotted!r}: {where} is a value, not a group of fields")
        if part not in node:
            if i == 0 and part in RENAMED:
                return  # an old name of a field (from_dict reads it as the new one)
            if i == 0 and _a_method_parameter(part):
                return  # a method's own parameter in the short form (from_dict moves it into method_params)
            if i == 1 and parts[0] == "data" and _a_source_parameter(part):
                return  # a source's own parameter in the short form (DataConfig moves it into data.params)
            if node or i == 0:
                valid = ", ".join(sorted(node))
                raise ConfigError(f"{source}: unknown field {dotted!r}; valid {where + ' ' if where else ''}fields: {valid}")
            return  # an empty mapping field (free-form parameters): its keys are checked by building the config
        node = node[part]


def _a_method_parameter(name: str) -> bool:
    import dataclasses

    from dynnn_lib.core.registry import available_methods

    return any(name in {f.name for f in dataclasses.fields(c.Params)} for c in available_methods().values())


def _a_source_parameter(name: str) -> bool:
    import dataclasses

    from dynnn_lib.core.registry import available_sources

    return any(name in {f.name for f in dataclasses.fields(c.Params)} for c in available_sources().values())


def _check_stream(cfg: RunConfig) -> None:
    """A method's parameters that do not fit the stream's length (DynamicNN: an expansion task beyond it) fail
    before any run starts; the source counts its tasks cheaply (a real one: when its folder is here, else the run
    says what is missing)."""
    from dynnn_lib.data import stream_length

    try:
        n = stream_length(cfg.data)
    except DataError:
        return
    cfg.method_class().check_stream(cfg, n)


def _build(values: dict, assign: Mapping[str, Any]) -> RunConfig:
    v = copy.deepcopy(values)
    for k, x in assign.items():
        set_path(v, k, x)
    cfg = from_dict(v)
    _check_stream(cfg)
    return cfg


def _fmt(assign: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in assign.items())


def expand(spec: SweepSpec) -> list[SweepPoint]:
    """Every run of the sweep, validated: (explicit points or one empty point) x the grid's cartesian product."""
    src = spec.source
    for path in list(spec.grid) + [k for p in spec.points for k in p]:
        _check_path(RunConfig(), path, src)
    out = []
    names = list(spec.grid)
    for explicit in spec.points or [{}]:
        for combo in itertools.product(*(spec.grid[n] for n in names)):
            assign = {**explicit, **dict(zip(names, combo))}
            try:
                out.append(SweepPoint(assign, _build(spec.base, assign)))
            except ConfigError as e:
                raise ConfigError(_blame(src, assign, str(e))) from None
    return out


def _blame(src: str, assign: Mapping[str, Any], msg: str) -> str:
    """Name the swept field a validation message is about (config messages name their field) when it is one."""
    named = [k for k in assign if re.search(rf"(?<![\w.]){re.escape(k)}\b", msg)
             or re.search(rf"(?<![\w.]){re.escape(k.split('.')[-1])}\b", msg)]
    if len(named) == 1:
        k = named[0]
        rest = {f: v for f, v in assign.items() if f != k}
        where = f" (with {_fmt(rest)})" if rest else ""
        return f"{src}: field {k!r} value {json.dumps(assign[k])}{where}: {msg}"
    return f"{src}: point {{{_fmt(assign)}}}: {msg}"


# ------------------------------------------------------------------ plan and run
@dataclass
class Plan:
    points: list[SweepPoint]
    configs: list[RunConfig]       # one per distinct training (key), in first-seen order
    cached: dict[str, Any]         # key -> cached RunResult
    threads: int
    est_run_s: float | None        # mean run time of the cached runs, None if nothing cached

    @property
    def todo(self) -> int:
        return len(self.configs) - len(self.cached)

    def summary(self, slots: int | None = None) -> str:
        n, distinct = len(self.points), len(self.configs)
        head = f"{n} runs" + (f" ({distinct} distinct trainings)" if distinct != n else "")
        head += f", {len(self.cached)} cached, {self.todo} to run"
        if not self.todo:
            return head + " (nothing to train)"
        if self.est_run_s is None:
            return head + "; time: unknown (no cached run of this sweep to time from)"
        serial = self.todo * self.est_run_s
        par = f", ~{_dur(serial / slots)} at {slots} parallel runs" if slots and slots > 1 else ""
        return head + f"; estimate ~{_dur(serial)} serial{par} ({self.est_run_s:.1f} s per run, {self.threads} thread(s))"


def _dur(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else (f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h")


def make_plan(spec: SweepSpec, runs_dir: str | Path | None = None, threads: int | None = None) -> Plan:
    from dynnn_lib.engine.runner import cached_result, default_runs_dir

    runs_dir = Path(runs_dir or default_runs_dir())
    points = expand(spec)
    with thread_count(threads) as n:
        seen: dict[str, RunConfig] = {}
        for p in points:
            seen.setdefault(p.config.key(), p.config)
        cached = {}
        for key, cfg in seen.items():
            try:
                hit = cached_result(cfg, runs_dir)
            except Exception:  # a damaged result: the run reports it
                hit = None
            if hit is not None:
                cached[key] = hit
    times = [r.timings.get("total_s") for r in cached.values() if r.timings.get("total_s")]
    return Plan(points, list(seen.values()), cached, n, sum(times) / len(times) if times else None)


@dataclass
class SweepReport:
    """A finished sweep: ``rows`` (one per grid point), ``runs`` (one per run), where its files are."""

    name: str
    metric: str
    fields: list[str]              # swept fields except seed (the grid point's coordinates)
    rows: list[dict]
    runs: list[dict]
    folder: Path | None = None
    meta: dict = field(default_factory=dict)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.runs if r["status"] == "failed"]

    def table(self) -> str:
        return markdown_table(self)

    def figure(self):
        return figure(self)

    def results(self, runs_dir: str | Path | None = None) -> list:
        """The RunResults of the complete runs (read from the runs folder; None where it is not there)."""
        from dynnn_lib.engine.runner import default_runs_dir, load_result

        d = Path(runs_dir or self.meta.get("runs_dir") or default_runs_dir())
        out = []
        for r in self.runs:
            p = d / r["key"] / "result.json"
            out.append(load_result(p).with_rule(r["config"].get("head_rule", r["config"].get("head_combine"))) if r["status"] != "failed" and p.exists()
                       else None)
        return out


def run_sweep(spec: SweepSpec, executor: str = "local", jobs: int = 2, address: str | None = None,
              threads: int | None = None, runs_dir: str | Path | None = None, out: str | Path | None = None,
              progress: bool = True, max_retries: int = 3, echo=print) -> SweepReport:
    """Run every point of `spec` (cached runs are read, not recomputed) and write the report folder."""
    from dynnn_lib.engine.executors import execute
    from dynnn_lib.engine.runner import default_runs_dir

    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: need at least 1")
    if max_retries < 0:
        raise ConfigError(f"--max-retries {max_retries}: must be >= 0")
    runs_dir = Path(runs_dir or default_runs_dir())
    t0 = time.perf_counter()
    plan = make_plan(spec, runs_dir, threads)
    echo(plan.summary(jobs if executor == "local" else None))
    with thread_count(plan.threads):
        outcomes = execute(plan.configs, runs_dir, executor=executor, jobs=jobs, address=address, desc="sweep",
                           threads=plan.threads, progress=progress, max_retries=max_retries)
        report = build_report(spec, plan, outcomes)  # keys again: under the same thread count
    wall = time.perf_counter() - t0
    report.meta.update({"executor": executor, "address": address, "jobs": jobs, "threads": plan.threads,
                        "wall_s": wall, "runs_dir": str(runs_dir)})
    folder = write_report(report, out)
    counts = {s: sum(o.status == s for o in outcomes.values()) for s in ("done", "cached", "failed")}
    echo(f"{len(plan.points)} runs: {counts['done']} trained, {counts['cached']} cached, {counts['failed']} failed "
         f"in {wall:.1f} s; report: {folder}")
    return report


# ------------------------------------------------------------------ report
def _ci(values: Sequence[float]) -> tuple[float | None, float | None]:
    from dynnn_lib.evaluation.stats import mean_sd, t95

    if not values:
        return None, None
    m, sd = mean_sd(values)
    if len(values) < 2:
        return m, None
    return m, t95(len(values) - 1) * sd / math.sqrt(len(values))


def build_report(spec: SweepSpec, plan: Plan, outcomes: Mapping[str, Any]) -> SweepReport:
    fields = [k for k in dict.fromkeys(k for p in plan.points for k in p.assign) if k != "seed"]
    runs, groups = [], {}
    for p in plan.points:
        key = p.config.key()
        o = outcomes[key]
        res = o.result.with_rule(p.config.head_rule) if o.result is not None and o.result.matrices else o.result
        metrics = res.metrics if res is not None and o.status != "failed" else {}
        runs.append({"assign": p.assign, "seed": p.config.seed, "key": key, "status": o.status, "error": o.error,
                     "metrics": metrics, "matrix": None if res is None else _rows(res.matrix),
                     "config": p.config.to_dict()})
        groups.setdefault(p.group, []).append(runs[-1])
    rows = []
    for g, members in groups.items():
        vals = [r["metrics"][spec.metric] for r in members if r["metrics"] and math.isfinite(r["metrics"][spec.metric])]
        mean, half = _ci(vals)
        rows.append({"point": {k: members[0]["assign"].get(k) for k in fields}, "n": len(vals),
                     "failed": sum(r["status"] == "failed" for r in members), "seeds": [r["seed"] for r in members],
                     "mean": mean, "ci95": half})
    return SweepReport(spec.name, spec.metric, fields, rows, runs, meta={"spec": spec.to_dict(), "schema": SCHEMA})


def _rows(m) -> list:
    return [[None if not math.isfinite(v) else float(v) for v in row] for row in m]


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.2f}"


def markdown_table(report: SweepReport) -> str:
    from dynnn_lib.reports.tables import markdown_table as table

    head = report.fields + ["seeds", "failed", f"{report.metric} mean (%)", "95 % CI ± (%)"]
    rows = [[json.dumps(r["point"][f]) for f in report.fields] + [r["n"], r["failed"], _pct(r["mean"]), _pct(r["ci95"])]
            for r in report.rows]
    return table([head] + rows)


def _label(point: Mapping[str, Any], fields: Sequence[str]) -> str:
    return ", ".join(f"{f}={json.dumps(point[f])}" for f in fields) or "all"


def figure(report: SweepReport):
    """Plotly figure: the metric (%) over the first swept field, one line per combination of the others, error
    bars = 95 % interval over seeds (none with a single seed)."""
    import plotly.graph_objects as go

    x_field, others = (report.fields[0], report.fields[1:]) if report.fields else (None, [])
    traces: dict[str, list[dict]] = {}
    for r in report.rows:
        traces.setdefault(_label(r["point"], others), []).append(r)
    fig = go.Figure()
    for label, rows in traces.items():
        xs = [json.dumps(r["point"][x_field]) if x_field else "all" for r in rows]
        ys = [None if r["mean"] is None else r["mean"] * 100 for r in rows]
        err = [0.0 if r["ci95"] is None else r["ci95"] * 100 for r in rows]
        fig.add_trace(go.Scatter(x=xs, y=ys, name=label, mode="lines+markers",
                                 error_y={"type": "data", "array": err, "visible": True},
                                 customdata=[[r["n"]] for r in rows],
                                 hovertemplate="%{x}: %{y:.2f} % ± %{error_y.array:.2f} (n=%{customdata[0]})"))
    fig.update_layout(title=f"sweep {report.name}: {report.metric} (mean ± 95 % CI over seeds)",
                      xaxis_title=x_field or "", yaxis_title=f"{report.metric} (%)", xaxis={"type": "category"},
                      width=760, height=460)
    return fig


def write_report(report: SweepReport, out: str | Path | None = None) -> Path:
    from dynnn_lib.core.store import atomic_text

    folder = Path(out or default_reports_dir()) / report.name
    folder.mkdir(parents=True, exist_ok=True)
    atomic_text(folder / "table.md", f"# Sweep {report.name}\n\n{markdown_table(report)}\n")
    buf = io.StringIO()
    w = csv.writer(buf)
    names = matrix_metrics()
    w.writerow(report.fields + ["seed", "key", "status"] + list(names) + ["error"])
    for r in report.runs:
        w.writerow([json.dumps(r["assign"].get(f)) for f in report.fields] + [r["seed"], r["key"], r["status"]]
                   + [r["metrics"].get(m, "") for m in names] + [r["error"] or ""])
    atomic_text(folder / "runs.csv", buf.getvalue())
    body = {"schema": SCHEMA, "name": report.name, "metric": report.metric, "fields": report.fields,
            "rows": report.rows, "runs": report.runs, "meta": report.meta}
    atomic_text(folder / "sweep.json", json.dumps(body, indent=1, default=str))
    try:
        figure(report).write_html(folder / "figure.html", include_plotlyjs="cdn")
    except ImportError:
        (folder / "figure.html").unlink(missing_ok=True)
    report.folder = folder
    return folder


def load_sweep(name: str, reports_dir: str | Path | None = None) -> SweepReport:
    """A finished sweep by name (``reports/sweeps/<name>/sweep.json``): ``.rows``, ``.runs``, ``.table()``,
    ``.figure()``, ``.results()``."""
    path = Path(reports_dir or default_reports_dir()) / name / "sweep.json"
    if not path.is_file():
        raise ConfigError(f"no finished sweep {name!r}: {path} does not exist; run dynnn sweep first")
    try:
        body = json.loads(path.read_text())
        if body.get("schema") != SCHEMA:
            raise ValueError(f"schema {body.get('schema')!r}")
        return SweepReport(body["name"], body["metric"], body["fields"], body["rows"], body["runs"], path.parent,
                           body.get("meta", {}))
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path} is not a sweep manifest ({e}); run the sweep again") from None

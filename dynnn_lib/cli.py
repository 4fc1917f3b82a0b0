"""Command line, the one entry point: ``dynnn <command>`` (``python -m dynnn_lib.cli <command>`` alike); ``dynnn --help``
lists every registered command (the list is built from the subparsers, never typed).

Every subcommand is declared one way (``_commands``: its name, help, ``add_arguments`` and ``command``), and the
options several share (``--runs-dir``, ``--jobs``, ``--no-progress``, ``--import``) are defined once, in
core/options.py, for these and for the modules that declare their own arguments.

Errors in the input come out as one line (``dynnn: error: ...``) with exit status 2; an interrupted run
keeps its finished tasks and resumes when the same command is run again.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from dynnn_lib.core.config import from_dict
from dynnn_lib.core import options
from dynnn_lib.core.errors import ConfigError, DynnnError
from dynnn_lib.core.registry import import_modules


def _dest(param: str) -> str:
    return f"method_param_{param}"


def _method_options(p: argparse.ArgumentParser) -> None:
    """The registered methods' shortcuts for their parameters (Method.cli_options, e.g. DynamicNN's --expand)."""
    from dynnn_lib.methods import available_methods

    seen: set[str] = set()
    for cls in available_methods().values():
        for param, (flag, kwargs) in cls.cli_options.items():
            if flag not in seen:
                seen.add(flag)
                p.add_argument(flag, dest=_dest(param), default=None, **kwargs)


def _method_options_given(args: argparse.Namespace) -> list[str]:
    prefix = _dest("")
    return [k[len(prefix):] for k, v in vars(args).items() if k.startswith(prefix) and v is not None]


def _add_run(r: argparse.ArgumentParser) -> None:
    r.add_argument("--method", help="a registered method, built in or a plugin's (dynnn methods lists them)")
    r.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="a parameter of the method (method_params), e.g. --param memory=500")
    _method_options(r)
    r.add_argument("--head-rule", "--head-combine", dest="head_rule",
                   help="test-time head rule, built in or a plugin's (evaluation only: never retrains)")
    r.add_argument("--lr-trick", action="store_true", help="small learning rate on incremental tasks")
    r.add_argument("--json", action="store_true", help="print the aggregate as JSON")
    options.run_options(r)


def _add_show(show: argparse.ArgumentParser) -> None:
    show.add_argument("path", help="a run folder, its result.json, or a run key (in --runs-dir)")
    options.runs_dir(show)
    show.add_argument("--head-rule", "--rule", dest="rule",
                      help="score under this head rule, built in or a plugin's (never retrains)")
    options.imports(show)
    show.add_argument("--png", metavar="FILE", help="write the heatmap as a PNG")
    show.add_argument("--html", metavar="FILE", help="write an interactive plotly heatmap as HTML")
    show.add_argument("--no-color", action="store_true", help="plain text matrix")


def _add_runs(runs: argparse.ArgumentParser) -> None:
    options.runs_dir(runs)
    runs.add_argument("--method", help="only this method")
    runs.add_argument("--head-rule", "--rule", dest="rule", help="metrics under this head rule (a plugin's too)")
    options.imports(runs)
    runs.add_argument("--disk", action="store_true", help="what the runs folder takes: results, checkpoints, shared "
                                                          "prefixes (per task) and their bound")


def _add_prune(prune: argparse.ArgumentParser) -> None:
    options.runs_dir(prune)
    prune.add_argument("--max-gb", type=float, default=0.0,
                       help="keep the most recently used prefixes up to this size (default 0: remove them all)")


EXPORT_TARGETS = ("files", "mlflow", "tensorboard")


def _add_export(exp: argparse.ArgumentParser) -> None:
    options.runs_dir(exp)
    exp.add_argument("--to", default="files", help="files (default: the tables below), mlflow (one MLflow run per "
                     "run) or tensorboard (training curves and matrix rows); the last two need 'dynnn[export]'")
    exp.add_argument("--format", default="csv", help="--to files: csv (default) or parquet")
    exp.add_argument("--out", default="reports/runs", help="--to files: folder for runs.<fmt> and matrices.<fmt>")
    exp.add_argument("--mlflow-uri", help="--to mlflow: the tracking store (default: a SQLite file, "
                     "<runs>/_mlflow/mlflow.db; a file: folder or a server's URL work too)")
    exp.add_argument("--experiment", default="dynnn", help="--to mlflow: the MLflow experiment (default dynnn)")
    exp.add_argument("--logdir", help="--to tensorboard: the event files' folder (default <runs>/_tensorboard)")


def _add_sweep(sw: argparse.ArgumentParser) -> None:
    sw.add_argument("spec", help="sweep YAML: name, preset, base, grid, list, metric (see params/sweep_example.yaml)")
    sw.add_argument("--dry-run", action="store_true", help="count the runs, the cached ones and the time; train nothing")
    sw.add_argument("--executor", choices=["local", "ray"], default="local",
                    help="local process pool (default) or Ray tasks (pip install 'dynnn[ray]')")
    sw.add_argument("--address", help="Ray cluster to use: auto (the one started on this machine) or HOST:PORT; "
                                      "default with --executor ray: a new local Ray instance")
    options.jobs(sw, "parallel runs: local processes, or CPUs of a new local Ray instance")
    sw.add_argument("--threads", type=int, default=None, help="torch threads per run (part of the cache key; "
                                                              "default $DYNNN_THREADS or 1)")
    sw.add_argument("--max-retries", type=int, default=3, help="retries of a run whose worker dies (default 3)")
    options.runs_dir(sw, "; on a cluster: a folder every node sees at the same path")
    sw.add_argument("--out", default=None, help="report folder root (default reports/sweeps; report in <out>/<name>/)")
    options.no_progress(sw)
    options.imports(sw)


def _commands() -> list[tuple[str, str, Callable, Callable]]:
    """Every subcommand, declared one way: (name, help, add_arguments(parser), command(args) -> exit status). The
    larger ones live in their own module, which defines both; every registered experiment's command comes from the
    registry of experiments (experiments/contract.py), after these."""
    from dynnn_lib.engine import verify, why
    from dynnn_lib.experiments import arms
    from dynnn_lib.experiments.contract import experiments
    from dynnn_lib.reports import readme
    from dynnn_lib.workbench import batch, nbval_refs, plan

    return [
        ("run", "run one method over seeds and print its accuracy matrix", _add_run, _run_cmd),
        ("show", "a stored run's matrix: a heatmap in the terminal, or a PNG / HTML file", _add_show, _show_cmd),
        ("runs", "list the cached runs: method, key parameters, seed, status, metrics, when, commit", _add_runs,
         _runs_cmd),
        ("prune", "free the disk the shared prefixes take (results are never touched)", _add_prune, _prune_cmd),
        ("export", "write the runs table and the matrices (long form) as CSV or parquet, or the runs into an MLflow "
                   "store or TensorBoard event files", _add_export, _export_cmd),
        ("methods", "list the registered methods and their parameters, then the head rules and metrics",
         options.imports, _methods_cmd),
        ("sources", "list the registered data sources and their parameters", options.imports, _sources_cmd),
        ("sweep", "run a grid of configurations (YAML spec) locally or on Ray; report per point", _add_sweep,
         _sweep_cmd),
        ("plan", "plan every run the reports and notebooks need and train the union once (make train)",
         plan.add_arguments, plan.command),
        ("batch", "run every notebook headless and build reports/ (make notebooks)", batch.add_arguments,
         batch.command),
        ("readme", "refill the README's generated blocks from reports/ (make readme)", readme.add_arguments,
         readme.command),
        ("nbval-refs", "regenerate tests/nbval/*.ipynb after editing a notebook (make nbval-refs)",
         nbval_refs.add_arguments, nbval_refs.command),
        ("verify", "retrain cached runs alone and compare them with the cache (bit for bit on this CPU; exit 1 on a "
                   "difference)", verify.add_arguments, verify.command),
        ("arms", "the stand-in's arms (batch composition x pretrained trunk) trained and scored on generated instances",
         arms.add_arguments, arms.command),
        ("why", "the inputs of a run's key, or what differs between two runs or a run and a configuration (why it "
                "retrained)", why.add_arguments, why.command),
    ] + [(c.name, c.help, c.add_arguments, c.run) for c in (e.command for e in experiments().values()) if c]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dynnn")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_, add_arguments, command in _commands():
        p = sub.add_parser(name, help=help_, description=command.__doc__ or help_)
        add_arguments(p)
        p.set_defaults(func=command)
    parser.description = f"dynnn, the one command-line entry point: dynnn {' | '.join(sub.choices)}"
    return parser


def _run_cmd(args: argparse.Namespace) -> int:
    from dynnn_lib.evaluation.metrics import aggregate
    from dynnn_lib.engine.executors import run_seeds

    import_modules(args.imports)
    values = options.base_config(args)
    for flag in ("method", "head_rule"):
        if getattr(args, flag) is not None:
            values[flag] = getattr(args, flag)
    for param in _method_options_given(args):
        values.setdefault("method_params", {})[param] = getattr(args, _dest(param))
    if args.lr_trick:
        values["lr_trick"] = True
    options.check_counts(args)
    cfg = from_dict(values)
    results = run_seeds(cfg, range(args.seeds), args.runs_dir, jobs=args.jobs, progress=not args.no_progress)
    agg = aggregate([r.matrix for r in results])
    if args.json:
        print(json.dumps({"config": cfg.to_dict(), "matrix_mean": agg["matrix_mean"].tolist(),
                          "matrix_std": agg["matrix_std"].tolist(), "metrics": agg["metrics"],
                          "routing": [None if r.routing is None else r.routing.tolist() for r in results],
                          "expanded_at": [r.expanded_at for r in results], "keys": [r.config.key() for r in results]}))
        return 0
    from dynnn_lib.evaluation.metrics import metric_label
    from dynnn_lib.reports.tables import text_matrix

    print(text_matrix(agg["matrix_mean"], agg["matrix_std"]))
    print()
    for name, (m, s) in agg["metrics"].items():
        print(f"{metric_label(name):>17}: {m * 100:6.2f} ± {s * 100:.2f}")
    print(f"{'expanded at':>17}: {[r.expanded_at for r in results]}")
    routing = [round(float(np.nanmean(r.routing[-1])) * 100, 2) for r in results if r.routing is not None]
    print(f"{'routing acc.':>17}: {routing} (test images sent to the head responsible for their task, final row)")
    return 0


def _show_cmd(args: argparse.Namespace) -> int:
    from dynnn_lib.engine.cache import default_runs_dir
    from dynnn_lib.reports.tables import matrix_png, text_matrix
    from dynnn_lib.engine.results import load_result

    import_modules(args.imports)
    path = Path(args.path)
    if not path.exists() and (Path(args.runs_dir or default_runs_dir()) / args.path).is_dir():
        path = Path(args.runs_dir or default_runs_dir()) / args.path
    if path.is_dir():
        path = path / "result.json"
    if not path.exists():
        raise ConfigError(f"{path} does not exist; pass a run folder, its result.json or a run key (see dynnn runs)")
    res = load_result(path)
    if args.rule:
        res = res.with_rule(args.rule)
    cfg = res.config
    title = f"{cfg.method} seed {cfg.seed}, head rule {cfg.head_rule}"
    print(f"{title}; status: {res.status}" + (f" ({res.error})" if res.error else ""))
    print(text_matrix(res.matrix, color=not args.no_color and sys.stdout.isatty()))
    if res.status == "complete":
        from dynnn_lib.evaluation.metrics import metric_label

        print("  ".join(f"{metric_label(k)}: {v * 100:.2f}" for k, v in res.metrics.items()))
    if args.png:
        print(f"wrote {matrix_png(res.matrix, args.png, title)}")
    if args.html:
        from dynnn_lib.reports import figures as viz

        out = Path(args.html)
        out.parent.mkdir(parents=True, exist_ok=True)
        viz.heatmap(res.matrix, None, res.task_names, title=title).write_html(out, include_plotlyjs="cdn")
        print(f"wrote {out}")
    return 0


def _disk_cmd(args: argparse.Namespace) -> int:
    from dynnn_lib.engine.runs import disk_usage

    d = disk_usage(args.runs_dir)
    mb = lambda b: f"{b / 1e6:,.1f} MB"  # noqa: E731
    print(f"runs folder {d['root']}: {mb(d['bytes'])}")
    print(f"  results      {d['runs']:>6} runs         {mb(d['runs_bytes'])}")
    print(f"  checkpoints  {d['checkpoints']:>6} unfinished   {mb(d['checkpoint_bytes'])}")
    p = d["prefixes"]
    print(f"  prefixes     {p['files']:>6} states in {p['groups']} task-0 group(s)  {mb(p['bytes'])} "
          f"(bound {mb(d['prefix_limit'])}: DYNNN_PREFIX_GB; dynnn prune frees them)")
    for t, (files, size) in sorted(p["by_task"].items()):
        print(f"    after task {t}: {files} states, {mb(size)}")
    return 0


def _prune_cmd(args: argparse.Namespace) -> int:
    from dynnn_lib.engine.cache import default_runs_dir, prune_prefixes

    if not args.max_gb >= 0:
        raise ConfigError(f"--max-gb {args.max_gb}: give a size in GB >= 0")
    removed, freed = prune_prefixes(args.runs_dir or default_runs_dir(), args.max_gb * 1e9)
    print(f"removed {removed} prefix group(s), {freed / 1e6:,.1f} MB freed; results untouched (a run that needs a "
          "removed prefix trains it again)")
    return 0


def _runs_cmd(args: argparse.Namespace) -> int:
    from dynnn_lib.engine.runs import runs_table

    from dynnn_lib.evaluation.metrics import with_extra_metrics

    if args.disk:
        return _disk_cmd(args)

    import_modules(args.imports)
    df = runs_table(args.runs_dir, rule=args.rule)
    if args.method:
        df = df[df["method"] == args.method]
    if df.empty:
        print("no stored runs" + (f" of method {args.method!r}" if args.method else ""))
        return 0
    shown = list(with_extra_metrics("overall", "final", "bwt", every=True))
    cols = ["run", "method", "method_params", "seed", "data_seed", "status", *shown, "when", "commit", "marks"]
    view = df[cols].copy()
    for m in shown:
        view[m] = (view[m] * 100).round(2)
    view["when"] = view["when"].map(lambda t: t.strftime("%Y-%m-%d %H:%M") if t is not None else "")
    import pandas as pd

    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 40):
        print(view.sort_values(["method", "seed"]).to_string(index=False))
    print(f"\n{len(df)} runs ({(df['status'] == 'complete').sum()} complete); metrics in percent under each run's "
          "head rule; dynnn export writes every column")
    return 0


def _export_cmd(args: argparse.Namespace) -> int:
    from dynnn_lib.engine.cache import default_runs_dir
    from dynnn_lib.engine.runs import export, stored_results

    if args.to not in EXPORT_TARGETS:
        raise ConfigError(f"--to {args.to!r}: choose {', '.join(EXPORT_TARGETS)}")
    if args.to == "files":
        for path in export(args.runs_dir, args.out, args.format):
            print(f"wrote {path}")
        return 0
    from dynnn_lib.reports import trackers

    root = Path(args.runs_dir or default_runs_dir())
    if args.to == "mlflow":
        where = args.mlflow_uri or trackers.default_mlflow_uri(root)
        done = trackers.to_mlflow(stored_results(root), where, args.experiment)
        opener = f"mlflow ui --backend-store-uri {where}"
    else:
        where = args.logdir or str(root / "_tensorboard")
        done = trackers.to_tensorboard(stored_results(root), where)
        opener = f"tensorboard --logdir {where}"
    counts = {w: list(done.values()).count(w) for w in ("written", "replaced", "unchanged")}
    print(f"{args.to} {where}: " + ", ".join(f"{n} {w}" for w, n in counts.items()) + f"; open it: {opener}")
    return 0


def _methods_cmd(args: argparse.Namespace) -> int:
    import dataclasses

    from dynnn_lib.methods import available_methods

    import_modules(args.imports)
    for name, cls in sorted(available_methods().items()):
        params = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls.Params))
        marks = "; ".join(cls.marks())
        print(f"{name:<10} {cls.describe()}" + (f" [{params}]" if params else "") + (f" ({marks})" if marks else ""))
    _scoring_list()
    return 0


def _scoring_list() -> None:
    """The head rules and metrics a run is scored with (built in and imported), each with its definition: what
    `dynnn show --rule`, `dynnn runs` and the explorer offer."""
    from dynnn_lib.core.registry import HEAD_RULES, METRICS

    print("\nhead rules (dynnn show RUN --rule NAME):")
    for name, rule in HEAD_RULES.available().items():
        print(f"  {name:<12} {rule.definition}")
    print("\nmetrics (dynnn runs; higher is better unless marked):")
    for name, m in METRICS.available().items():
        print(f"  {name:<16} {m.label}: {m.definition}" + ("" if m.higher_is_better else " (lower is better)"))


def _sources_cmd(args: argparse.Namespace) -> int:
    import dataclasses

    from dynnn_lib.data import available_sources

    import_modules(args.imports)
    for name, cls in sorted(available_sources().items()):
        params = ", ".join(f"{f.name}={f.default!r}" if f.default is not dataclasses.MISSING else f.name
                           for f in dataclasses.fields(cls.Params))
        print(f"{name:<21} {cls.describe()}" + (f" [{params}]" if params else ""))
    return 0


def _sweep_cmd(args: argparse.Namespace) -> int:
    from dynnn_lib.experiments.sweep import load_spec, make_plan, run_sweep

    import_modules(args.imports)
    spec = load_spec(args.spec)
    if args.executor == "local" and args.address:
        raise ConfigError("--address needs --executor ray (the local executor runs on this machine)")
    if args.dry_run:
        plan = make_plan(spec, args.runs_dir, args.threads)
        print(f"sweep {spec.name}: " + plan.summary(args.jobs if args.executor == "local" else None))
        return 0
    report = run_sweep(spec, executor=args.executor, jobs=args.jobs, address=args.address, threads=args.threads,
                       runs_dir=args.runs_dir, out=args.out, progress=not args.no_progress,
                       max_retries=args.max_retries)
    print(report.table())
    for r in report.failed:
        print(f"failed: {', '.join(f'{k}={json.dumps(v)}' for k, v in r['assign'].items())}: {r['error']}",
              file=sys.stderr)
    return 1 if report.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DynnnError as e:
        print(f"dynnn: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dynnn: interrupted; finished tasks are checkpointed - run the same command again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Command line: ``dynnn run``, ``dynnn reproduce``, ``dynnn show``.

Errors in the input come out as one line (``dynnn: error: ...``) with exit status 2; an interrupted run
keeps its finished tasks and resumes when the same command is run again.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .config import HEAD_COMBINE, METHODS, PRESETS, from_dict
from .errors import ConfigError, DynnnError


def _parse_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _load_yaml(path: str) -> dict:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {path} does not exist; pass a YAML file of RunConfig fields")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of RunConfig fields")
    return data


def _set_nested(d: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value


def base_config(args: argparse.Namespace) -> dict:
    """Layer: preset < --config YAML < dedicated flags < --set key=value."""
    values: dict = json.loads(json.dumps(PRESETS[args.preset])) if args.preset else {}
    if args.config:
        for k, v in _load_yaml(args.config).items():
            if k == "data" and isinstance(v, dict):
                values.setdefault("data", {}).update(v)
            else:
                values[k] = v
    if args.data_source:
        _set_nested(values, "data.source", args.data_source)
    if args.data_root:
        _set_nested(values, "data.root", args.data_root)
    if args.n_tasks is not None:
        _set_nested(values, "data.n_tasks", args.n_tasks)
    if args.device:
        values["device"] = args.device
    for item in args.set or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r} must look like key=value, e.g. --set kd_temperature=4")
        key, _, text = item.partition("=")
        _set_nested(values, key.strip(), _parse_value(text))
    return values


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (0..N-1), default 5")
    p.add_argument("--jobs", type=int, default=2, help="parallel processes, default 2")
    p.add_argument("--preset", choices=sorted(PRESETS), help="a named starting configuration (tiny = smoke test)")
    p.add_argument("--config", help="YAML file of RunConfig fields")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any field, e.g. data.n_tasks=4")
    p.add_argument("--data-source", choices=["synthetic", "openloris-round1", "openloris-folders"])
    p.add_argument("--data-root", help="folder of the real dataset (holds train/ and test/)")
    p.add_argument("--n-tasks", type=int, help="use only the first N tasks of the stream")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"])
    p.add_argument("--runs-dir", default=None, help="where runs are cached (default ./runs or $DYNNN_RUNS)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dynnn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run one method over seeds and print its accuracy matrix")
    r.add_argument("--method", choices=METHODS, help="finetune | expand | kd | combined")
    r.add_argument("--expand", type=int, nargs="+", metavar="TASK", help="expand at these task indices")
    r.add_argument("--expand-threshold", type=float, help="expand automatically below this accuracy (0..1)")
    r.add_argument("--kd-head", choices=["best", "worst"])
    r.add_argument("--head-combine", choices=list(HEAD_COMBINE), help="test-time head rule (evaluation only: never retrains)")
    r.add_argument("--lr-trick", action="store_true", help="small learning rate on incremental tasks")
    r.add_argument("--json", action="store_true", help="print the aggregate as JSON")
    _common(r)

    rep = sub.add_parser("reproduce", help="the paper's five variants, poster-style table per head rule")
    rep.add_argument("--out", default="reports", help="folder for reproduction.md/.json (default reports/)")
    rep.add_argument("--head-rules", nargs="+", choices=list(HEAD_COMBINE), default=["router", "oracle", "mean_prob"],
                     help="one table per test-time head rule (default: router oracle mean_prob)")
    _common(rep)

    show = sub.add_parser("show", help="verify and print a stored result.json")
    show.add_argument("path")

    sw = sub.add_parser("sweep", help="run a grid of configurations (YAML spec) locally or on Ray; report per point")
    sw.add_argument("spec", help="sweep YAML: name, preset, base, grid, list, metric (see params/sweep_example.yaml)")
    sw.add_argument("--dry-run", action="store_true", help="count the runs, the cached ones and the time; train nothing")
    sw.add_argument("--executor", choices=["local", "ray"], default="local",
                    help="local process pool (default) or Ray tasks (pip install 'dynnn[ray]')")
    sw.add_argument("--address", help="Ray cluster to use: auto (the one started on this machine) or HOST:PORT; "
                                      "default with --executor ray: a new local Ray instance")
    sw.add_argument("--jobs", type=int, default=2, help="parallel runs: local processes, or CPUs of a new local Ray "
                                                        "instance (default 2)")
    sw.add_argument("--threads", type=int, default=None, help="torch threads per run (part of the cache key; "
                                                              "default $DYNNN_THREADS or 1)")
    sw.add_argument("--max-retries", type=int, default=3, help="retries of a run whose worker dies (default 3)")
    sw.add_argument("--runs-dir", default=None, help="where runs are cached (default ./runs or $DYNNN_RUNS); "
                                                     "on a cluster: a folder every node sees at the same path")
    sw.add_argument("--out", default=None, help="report folder root (default reports/sweeps; report in <out>/<name>/)")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _run_cmd(args: argparse.Namespace) -> int:
    from .metrics import aggregate
    from .runner import run_seeds

    values = base_config(args)
    for flag, key in (("method", "method"), ("expand_threshold", "expand_threshold"), ("kd_head", "kd_head"),
                      ("head_combine", "head_combine")):
        if getattr(args, flag) is not None:
            values[key] = getattr(args, flag)
    if args.expand is not None:
        values["expand_at"] = args.expand
    if args.lr_trick:
        values["lr_trick"] = True
    _check_counts(args)
    cfg = from_dict(values)
    results = run_seeds(cfg, range(args.seeds), args.runs_dir, jobs=args.jobs, progress=not args.no_progress)
    agg = aggregate([r.matrix for r in results])
    if args.json:
        print(json.dumps({"config": cfg.to_dict(), "matrix_mean": agg["matrix_mean"].tolist(),
                          "matrix_std": agg["matrix_std"].tolist(), "metrics": agg["metrics"],
                          "routing": [None if r.routing is None else r.routing.tolist() for r in results],
                          "expanded_at": [r.expanded_at for r in results], "keys": [r.config.key() for r in results]}))
        return 0
    print(format_matrix(agg["matrix_mean"], agg["matrix_std"]))
    print()
    for name, (m, s) in agg["metrics"].items():
        print(f"{name:>17}: {m * 100:6.2f} ± {s * 100:.2f}")
    print(f"{'expanded at':>17}: {[r.expanded_at for r in results]}")
    routing = [round(float(np.nanmean(r.routing[-1])) * 100, 2) for r in results if r.routing is not None]
    print(f"{'routing acc.':>17}: {routing} (test images sent to the head responsible for their task, final row)")
    return 0


def _check_counts(args: argparse.Namespace) -> None:
    if args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds}: need at least 1 seed")
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: need at least 1 process")


def format_matrix(mean: np.ndarray, std: np.ndarray) -> str:
    n = len(mean)
    head = "after\\test " + "".join(f"{j:>14}" for j in range(n))
    rows = [head] + [f"T{i:<9} " + "".join(f"{mean[i, j] * 100:7.2f}±{std[i, j] * 100:<5.2f} " for j in range(n))
                     for i in range(n)]
    return "\n".join(rows)


def _reproduce_cmd(args: argparse.Namespace) -> int:
    from .reproduce import ordering_report, reproduce, summary_table
    from .store import atomic_text

    _check_counts(args)
    base = base_config(args)
    summaries = reproduce(base, seeds=range(args.seeds), jobs=args.jobs, runs_dir=args.runs_dir,
                          progress=not args.no_progress)
    md, payload = ["# Reproduction of the paper's headline table", ""], {}
    for rule in args.head_rules:  # the same trained runs, re-scored: a head rule never retrains
        scored = [s.with_rule(rule) for s in summaries]
        table, order = summary_table(scored), ordering_report(scored)
        md += [f"## Head rule: {rule}", "", table, "", order, ""]
        payload[rule] = {s.name: s.payload() for s in scored}
    text = "\n".join(md)
    print(text)
    out = Path(args.out)
    atomic_text(out / "reproduction.md", text + "\n")
    atomic_text(out / "reproduction.json", json.dumps(payload, indent=1))
    print(f"\nwrote {out / 'reproduction.md'} and {out / 'reproduction.json'}")
    return 0


def _show_cmd(args: argparse.Namespace) -> int:
    from .runner import load_result

    path = Path(args.path)
    if path.is_dir():
        path = path / "result.json"
    if not path.exists():
        raise ConfigError(f"{path} does not exist; pass a run folder or its result.json")
    res = load_result(path)
    print(f"status: {res.status}" + (f" ({res.error})" if res.error else ""))
    print(format_matrix(res.matrix, np.zeros_like(res.matrix)))
    return 0


def _sweep_cmd(args: argparse.Namespace) -> int:
    from .sweep import load_spec, make_plan, run_sweep

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
        return {"run": _run_cmd, "reproduce": _reproduce_cmd, "show": _show_cmd, "sweep": _sweep_cmd}[args.command](args)
    except DynnnError as e:
        print(f"dynnn: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dynnn: interrupted; finished tasks are checkpointed - run the same command again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The command-line options several subcommands share, each defined once: ``dynnn``'s commands (cli.py) and the
modules that declare their own (``add_arguments`` in experiments/ and workbench/) add them with these functions, so
a flag means the same thing, with the same default and help, wherever it appears."""
from __future__ import annotations

import argparse
import json
import os

from dynnn_lib.core.config import (FACTORS, PRESETS, apply_assignments, parse_value, read_yaml, set_path)
from dynnn_lib.core.errors import ConfigError


def runs_dir(p: argparse.ArgumentParser, note: str = "") -> None:
    p.add_argument("--runs-dir", default=None, help="where runs are cached (default ./runs or $DYNNN_RUNS)" + note)


def jobs(p: argparse.ArgumentParser, what: str = "parallel processes", default: int | None = None) -> None:
    """--jobs, by default the machine's cores."""
    n = default or os.cpu_count() or 1
    p.add_argument("--jobs", type=int, default=n, help=f"{what} (default {'the cores: ' if not default else ''}{n})")


def no_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def imports(p: argparse.ArgumentParser) -> None:
    p.add_argument("--import", dest="imports", action="append", metavar="MODULE",
                   help="import a module (or a .py file) that registers methods or data sources first, e.g. --import "
                        "mymethods; worker processes import it too")


def _load_yaml(path: str) -> dict:
    data = read_yaml(path, "config file") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of RunConfig fields")
    return data


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
        set_path(values, "data.source", args.data_source)
    if args.data_root:
        set_path(values, "data.root", args.data_root)
    if args.factor:
        set_path(values, "data.factor", args.factor)
    if args.stream:
        set_path(values, "data.stream", args.stream)
    if args.n_tasks is not None:
        set_path(values, "data.n_tasks", args.n_tasks)
    if args.device:
        values["device"] = args.device
    for item in getattr(args, "param", None) or []:
        if "=" not in item:
            raise ConfigError(f"--param {item!r} must look like name=value, e.g. --param memory=500")
        key, _, text = item.partition("=")
        values.setdefault("method_params", {})[key.strip()] = parse_value(text)
    return apply_assignments(values, args.set or [])


def run_options(p: argparse.ArgumentParser) -> None:
    """The options of every command that trains a configuration (dynnn run, reproduce, baselines)."""
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (0..N-1), default 5")
    jobs(p)
    p.add_argument("--preset", choices=sorted(PRESETS), help="a named starting configuration (tiny = smoke test)")
    p.add_argument("--config", help="YAML file of RunConfig fields")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any field, e.g. data.n_tasks=4")
    p.add_argument("--data-source", metavar="SOURCE", help="a registered data source (dynnn sources lists them): "
                                                           "synthetic (default), image-folders, openloris-...")
    p.add_argument("--data-root", help="the folder a data source reads (e.g. image-folders: one folder per task)")
    p.add_argument("--factor", choices=list(FACTORS), help="openloris-benchmark1: the factor whose 9 segments are the tasks")
    p.add_argument("--stream", help="the generated stream: round1-calibrated (default), round1 (as before the "
                                    "calibration), round1-mixture / round1-calibrated-mixture (each batch a "
                                    "mixture of its factor subdirectories), benchmark1-<factor>, benchmark2 or a YAML "
                                    "file (core/streams.py); "
                                    "generator knobs: --set data.generator.weak_gain=0.2")
    p.add_argument("--n-tasks", type=int, help="use only the first N tasks of the stream")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"])
    runs_dir(p)
    no_progress(p)
    imports(p)


def check_counts(args: argparse.Namespace) -> None:
    if args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds}: need at least 1 seed")
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: need at least 1 process")

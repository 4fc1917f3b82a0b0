"""Why did this retrain? The inputs of a run's key, and what differs between two runs (``dynnn why``).

Each run folder keeps the inputs its key hashes in ``key.json`` (as ``dvc.lock`` keeps a stage's dependencies):
the training fields, the code file by file, the method's and source's own code, the stream, the data, the weights
files and the environment (core/config.py ``RunConfig.key_inputs``). ``dynnn why KEY`` prints them; ``dynnn why KEY
OTHER`` prints what differs between two runs, or between a run and a configuration you are about to run (OTHER a
YAML file, with ``--set``); ``dynnn plan`` says why when it would retrain a run it had stored for the same
configuration.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Iterable

from dynnn_lib.core.errors import ConfigError


def flatten(inputs: dict, prefix: str = "") -> dict[str, Any]:
    """{"config.seed": 0, "code.files.engine/train.py": "...", ...}: every leaf of a key's inputs by its path."""
    out: dict[str, Any] = {}
    for k, v in inputs.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, path + "."))
        else:
            out[path] = v
    return out


def differences(a: dict, b: dict) -> list[tuple[str, Any, Any]]:
    """(path, value in a, value in b) for every input that differs; the code's overall digest is left out when a
    file of it is named (the file says which)."""
    fa, fb = flatten(a), flatten(b)
    rows = [(k, fa.get(k, "(absent)"), fb.get(k, "(absent)")) for k in sorted(fa.keys() | fb.keys())
            if fa.get(k, "(absent)") != fb.get(k, "(absent)")]
    if any(k.startswith("code.files.") for k, *_ in rows):
        rows = [r for r in rows if r[0] != "code.digest"]
    return rows


def explain(rows: Iterable[tuple[str, Any, Any]], left: str = "run", right: str = "other") -> str:
    """The differences as lines a person reads: ``code: engine/train.py changed``, ``config.seed: 0 -> 1``."""
    lines = []
    for path, x, y in rows:
        if path.startswith("code.files."):
            name = path[len("code.files."):]
            what = "added" if x == "(absent)" else "removed" if y == "(absent)" else "changed"
            lines.append(f"code: dynnn_lib/{name} {what}")
        elif path in ("method", "source"):
            lines.append(f"{path}: its own code changed ({_short(x)} -> {_short(y)})")
        else:
            lines.append(f"{path}: {_short(x)} ({left}) -> {_short(y)} ({right})")
    return "\n".join(lines) or f"nothing: the {left} and the {right} have the same key inputs"


def _short(v: Any) -> str:
    text = json.dumps(v, sort_keys=True) if not isinstance(v, str) else v
    return text if len(text) <= 70 else text[:67] + "..."


def _find(runs_dir: Path, key: str) -> Path:
    hits = [p for p in runs_dir.iterdir() if p.is_dir() and p.name.startswith(key) and not p.name.startswith("_")] \
        if runs_dir.is_dir() else []
    if len(hits) != 1:
        raise ConfigError(f"run key {key!r} matches {len(hits)} runs in {runs_dir}; give a longer part of the key "
                          f"(dynnn runs lists them)")
    return hits[0]


def inputs_of(folder: Path) -> dict:
    from dynnn_lib.engine.cache import stored_inputs

    inputs = stored_inputs(folder)
    if inputs is None:
        raise ConfigError(f"{folder} keeps no key.json (stored before runs kept their key's inputs); its "
                          f"configuration is {folder / 'config.json'}")
    return inputs


def stored_by_configuration(runs_dir: Path) -> dict[str, Path]:
    """The stored runs that keep their key's inputs, by their configuration's training fields (as JSON)."""
    from dynnn_lib.core.config import from_dict

    out = {}
    for cfg_file in sorted(Path(runs_dir).glob("*/config.json")):
        if not (cfg_file.parent / "key.json").exists():
            continue
        try:
            out[_config_text(from_dict(json.loads(cfg_file.read_text())))] = cfg_file.parent
        except (ConfigError, ValueError):
            continue
    return out


def _config_text(cfg) -> str:
    return json.dumps(cfg.training_dict(), sort_keys=True)


def stored_elsewhere(configs, runs_dir: Path) -> list[tuple[Any, Path]]:
    """(configuration, folder) for each configuration the folder holds under another key: what would retrain."""
    index = stored_by_configuration(runs_dir)
    found = [(cfg, index.get(_config_text(cfg))) for cfg in configs]
    return [(cfg, folder) for cfg, folder in found if folder is not None and folder.name != cfg.key()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from dynnn_lib.core import options

    p.add_argument("key", metavar="KEY", help="a run's key (a unique beginning is enough)")
    p.add_argument("other", nargs="?", metavar="OTHER",
                   help="another run's key, or a YAML configuration you are about to run (with --set)")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help="change the configuration file's values (dotted keys, YAML values)")
    options.runs_dir(p)
    options.imports(p)


def command(args: argparse.Namespace) -> int:
    """Print the inputs of a run's key, or what differs between two runs or between a run and a configuration."""
    from dynnn_lib.core.config import apply_assignments, from_dict, read_yaml
    from dynnn_lib.core.registry import import_modules
    from dynnn_lib.engine.cache import default_runs_dir

    import_modules(args.imports)
    runs_dir = Path(args.runs_dir or default_runs_dir())
    folder = _find(runs_dir, args.key)
    mine = inputs_of(folder)
    if args.other is None:
        for path, value in flatten(mine).items():
            print(f"{path}: {_short(value)}")
        return 0
    if args.other.endswith((".yaml", ".yml", ".json")) or Path(args.other).is_file():
        cfg = from_dict(apply_assignments(dict(read_yaml(args.other)), args.assignments))
        other, right = cfg.key_inputs(), f"{args.other}, key {cfg.key()}"
    else:
        other_folder = _find(runs_dir, args.other)
        other, right = inputs_of(other_folder), other_folder.name
    print(explain(differences(mine, other), folder.name, right))
    return 0

"""make all's settings (params/make_all.yaml), read by the Makefile and by the experiments' defaults alike.

The one place they are written: the Makefile runs this file with the system ``python3`` (before ``.venv`` exists,
so it imports nothing beyond the standard library) to print one value as make text, and
``experiments/contract.Settings`` and the commands' option defaults call :func:`read`. One reader for both means
no second copy to keep in step. The format is YAML's flat subset, ``key: value`` or ``key: [a, b]``, one a line;
anything else is refused (a nested block would be read otherwise by a full YAML parser).

    python3 dynnn_lib/core/make_all.py params/make_all.yaml instances    # -> 1 2 3 4 5 6
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

DEFAULT = Path(__file__).resolve().parents[2] / "params" / "make_all.yaml"
ENV = "DYNNN_MAKE_ALL"  # another settings file (the Makefile exports its MAKE_ALL here, so the commands read it too)
_LINE = re.compile(r"^([a-z][a-z0-9_]*):[ \t]*(.*?)[ \t]*$")


def path() -> Path:
    """The settings file in use: $DYNNN_MAKE_ALL, else params/make_all.yaml."""
    return Path(os.environ.get(ENV) or DEFAULT)


def _scalar(text: str, where: str) -> Any:
    """A value as YAML reads it, for the forms this file allows: null, an integer, a plain string."""
    if text in ("", "null", "~"):
        return None
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if re.fullmatch(r"[\w./+-]+", text) and text.lower() not in ("true", "false", "yes", "no", "on", "off"):
        return text
    raise ValueError(f"{where}: {text!r} is not a plain value (an integer, null or a name of letters, digits, ./+-_)")


def _value(text: str, where: str) -> Any:
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_scalar(x.strip(), where) for x in inner.split(",")] if inner else []
    return _scalar(text, where)


def parse(text: str, where: str = "make_all.yaml") -> dict[str, Any]:
    """The flat mapping the file holds; a line of any other form is an error naming it."""
    out: dict[str, Any] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw)
        if not line.strip():
            continue
        m = _LINE.match(line)
        if not m or m.group(1) in out:
            raise ValueError(f"{where}:{n}: write `key: value` or `key: [a, b]` at the start of a line, each key once")
        out[m.group(1)] = _value(m.group(2), f"{where}:{n}")
    return out


def read(file: str | Path | None = None) -> dict[str, Any]:
    """make all's settings from `file` (default: :func:`path`)."""
    p = Path(file) if file else path()
    return parse(p.read_text(), str(p))


def as_make(value: Any) -> str:
    """A value as the Makefile uses it: a list space-separated, null empty."""
    if isinstance(value, list):
        return " ".join(as_make(v) for v in value)
    return "" if value is None else str(value)


def main(argv: list[str]) -> int:
    """``make_all.py FILE KEY``: print the value of KEY for the Makefile (exit 2, one line, if it is missing)."""
    if len(argv) != 2:
        print("usage: make_all.py FILE KEY", file=sys.stderr)
        return 2
    values = read(argv[0])
    if argv[1] not in values:
        print(f"{argv[0]}: no setting {argv[1]!r}", file=sys.stderr)
        return 2
    print(as_make(values[argv[1]]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

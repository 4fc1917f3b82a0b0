"""The command-line options several subcommands share, each defined once: ``dynnn``'s commands (cli.py) and the
modules that declare their own (``add_arguments`` in experiments/ and workbench/) add them with these functions, so
a flag means the same thing, with the same default and help, wherever it appears."""
from __future__ import annotations

import argparse
import os


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

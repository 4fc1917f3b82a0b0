"""Time one phase of `make all` and append it to reports/phases.json (standard library only: it also times the
set-up, before the virtual environment exists).

    python3 benchmarks/phase.py NAME -- COMMAND [ARGS...]
"""
import json
import subprocess
import sys
import time
from pathlib import Path

OUT = Path("reports/phases.json")


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python3 benchmarks/phase.py NAME -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    name, cmd = argv[0], argv[2:]
    start = time.perf_counter()
    rc = subprocess.call(cmd)
    seconds = time.perf_counter() - start
    OUT.parent.mkdir(parents=True, exist_ok=True)
    phases = json.loads(OUT.read_text()) if OUT.exists() else {}
    if name == "setup":  # the first phase of a new `make all`: start a new record
        phases = {}
    phases[name] = {"seconds": round(seconds, 1), "rc": rc, "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    OUT.write_text(json.dumps(phases, indent=1))
    print(f"[phase {name}: {seconds:.0f} s]", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

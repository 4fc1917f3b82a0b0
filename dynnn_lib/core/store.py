"""Atomic, checksummed, lock-protected files: nothing half-written ever reads as real."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import torch

from dynnn_lib.core.errors import ResultCorrupt

RESULT_SCHEMA = "dynnn.result/1"


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask is process-wide, so a set/reset races with threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, write: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the permissions open() would
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_torch_save(obj: Any, path: Path) -> None:
    _atomic_write(path, lambda fh: torch.save(obj, fh))


def _digest(payload: dict[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def write_json_checked(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` plus its sha256 atomically (temp file + fsync + rename)."""
    body = {**payload, "schema": RESULT_SCHEMA}
    body["checksum"] = _digest(body)
    data = json.dumps(body, indent=1, sort_keys=True).encode()
    _atomic_write(path, lambda fh: fh.write(data))


def read_json_checked(path: Path) -> dict[str, Any]:
    """Read a file written by write_json_checked; ResultCorrupt if truncated, edited or foreign."""
    path = Path(path)
    try:
        body = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultCorrupt(f"{path} is unreadable or truncated ({type(e).__name__}); delete it to recompute") from None
    if not isinstance(body, dict) or body.get("schema") != RESULT_SCHEMA:
        raise ResultCorrupt(f"{path} is not a dynnn result (schema {RESULT_SCHEMA!r}); delete it to recompute")
    checksum = body.pop("checksum", None)
    if checksum != _digest(body):
        raise ResultCorrupt(f"{path} fails its checksum (edited or damaged); delete it to recompute")
    return body


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """An inter-process lock (flock) held for the duration of the block; released if the process dies."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def atomic_text(path: Path, text: str) -> None:
    data = text.encode()
    _atomic_write(Path(path), lambda fh: fh.write(data))

"""What the benchmarks' command lines share: the ``--out`` file of a result, writing it, and
the Redis and service settings of the ones that measure a real ``spard serve``."""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.servers import RedisServer


def add_out_argument(parser: argparse.ArgumentParser, filename: str) -> None:
    """``--out``: the result's file, ``benchmark-results/<filename>`` unless given (the
    committed results are only replaced on purpose)."""
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("benchmark-results") / filename,
        help="where to write (default: benchmark-results/ in the current folder; the "
        "committed results are only replaced on purpose)",
    )


def write_result(path: Path, result: dict[str, Any]) -> None:
    """``result`` as indented JSON at ``path``, its folder made if missing, with where it came
    from under ``"provenance"``: when it was written and from which code."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stamped = {**result, "provenance": provenance(Path(__file__).parent)}
    path.write_text(json.dumps(stamped, indent=2) + "\n")


def provenance(checkout: Path) -> dict[str, Any]:
    """The UTC time now and the git commit of ``checkout``, with whether its tracked files
    differed from it (``commit`` and ``tree_clean`` are null outside a git checkout)."""
    written_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    commit = _git(checkout, "rev-parse", "HEAD")
    changes = _git(checkout, "status", "--porcelain", "--untracked-files=no")
    tree_clean = None if commit is None or changes is None else changes == ""
    return {"written_at": written_at, "commit": commit, "tree_clean": tree_clean}


def _git(checkout: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(checkout), *args], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def start_redis(name: str) -> RedisServer:
    """A started Redis of its own (AOF, fsync everysec) in a fresh temporary folder."""
    server = RedisServer(Path(tempfile.mkdtemp(prefix=f"spard-{name}-redis-")), "everysec")
    server.start()
    return server


def service_env(key_prefix: str) -> dict[str, str]:
    """The environment of a benchmarked service: no auth, its keys under ``key_prefix``."""
    return {"SPARD_AUTH_DISABLED": "true", "SPARD_KEY_PREFIX": key_prefix}

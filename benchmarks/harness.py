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
    version = code_version(checkout)
    commit, tree_clean = (None, None) if version is None else version
    return {"written_at": written_at, "commit": commit, "tree_clean": tree_clean}


def code_version(checkout: Path) -> tuple[str, bool] | None:
    """The commit checked out at ``checkout`` and whether its tracked files are unchanged;
    None outside a git checkout (or without git)."""

    def git(*args: str) -> str:
        command = ["git", "-C", str(checkout), *args]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        changes = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit, changes == ""


def start_redis(name: str) -> RedisServer:
    """A started Redis of its own (AOF, fsync everysec) in a fresh temporary folder."""
    server = RedisServer(Path(tempfile.mkdtemp(prefix=f"spard-{name}-redis-")), "everysec")
    server.start()
    return server


def service_env(key_prefix: str) -> dict[str, str]:
    """The environment of a benchmarked service: no auth, its keys under ``key_prefix``."""
    return {"SPARD_AUTH_DISABLED": "true", "SPARD_KEY_PREFIX": key_prefix}

"""What the benchmarks' command lines share: the ``--out`` file of a result, writing it, and
the Redis and service settings of the ones that measure a real ``spard serve``."""

from __future__ import annotations

import argparse
import json
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
    """``result`` as indented JSON at ``path``, its folder made if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def start_redis(name: str) -> RedisServer:
    """A started Redis of its own (AOF, fsync everysec) in a fresh temporary folder."""
    server = RedisServer(Path(tempfile.mkdtemp(prefix=f"spard-{name}-redis-")), "everysec")
    server.start()
    return server


def service_env(key_prefix: str) -> dict[str, str]:
    """The environment of a benchmarked service: no auth, its keys under ``key_prefix``."""
    return {"SPARD_AUTH_DISABLED": "true", "SPARD_KEY_PREFIX": key_prefix}

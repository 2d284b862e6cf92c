"""The ``spard`` command line: ``--version``, ``replay`` (and ``serve`` with the service).

It lives in the service's package, not the engine's: the engine (``spard/``) does no I/O and
imports neither the service nor the benchmarks. The efficacy benchmark is not part of the
installed package; it runs from a clone (``python -m benchmarks.efficacy``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

import spard
from spard.config import input_error
from spard.errors import did_you_mean
from spard.service.cli import replay as replay_module
from spard.service.cli.replay import read_replay_file, replay

DEFAULT_PLOT = Path("\0default")  # --plot given without a file: named after the input
# `spard bench` ran the efficacy benchmark from the wheel; the benchmark no longer ships (it
# needs torch, which the package does not declare), so the old command says where it went.
BENCH_MOVED = (
    "spard bench: the efficacy benchmark is not installed with spard; run it from a clone: "
    "python -m benchmarks.efficacy [options] (needs torch and pip install -e '.[bench]'; "
    "see benchmarks/efficacy/README.md)"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``spard`` console script; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:
        print(BENCH_MOVED, file=sys.stderr)
        return 2
    parser = _parser()
    args = parser.parse_args(arguments)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        status: int = args.handler(args)
    except spard.SpardError as exc:
        print(f"spard {args.command}: error: {exc.message}", file=sys.stderr)
        return 2
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spard", description=spard.__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"spard {spard.__version__}")
    commands = parser.add_subparsers(dest="command")

    replay_parser = commands.add_parser(
        "replay",
        help="feed a JSONL file of logged per-step scores through the engine",
        description=_plain(replay_module.__doc__ or ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay_parser.add_argument("file", type=Path, help="JSON Lines: optional header, then steps")
    replay_parser.add_argument(
        "--strategy",
        choices=spard.STRATEGIES,
        default="spard",
        help="the strategy to replay with (default: spard)",
    )
    replay_parser.add_argument(
        "--pawa-mode",
        choices=("gain", "absolute", "lag"),
        default=None,
        help="PAWA's utility (default: the config's, lag)",
    )
    replay_parser.add_argument(
        "--objectives", help="comma-separated names, if the file has no header line"
    )
    replay_parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a SpardConfig field (VALUE parsed as JSON), repeatable; keys: "
        + ", ".join(spard.SpardConfig.model_fields),
    )
    replay_parser.add_argument(
        "--plot",
        type=Path,
        nargs="?",
        const=DEFAULT_PLOT,
        metavar="PNG",
        help="write a PNG: weights, batch means, data weights (default file: "
        "spard-replay-<input name>.png in the current folder)",
    )
    replay_parser.add_argument("--json", type=Path, help="write every step result as JSON Lines")
    replay_parser.set_defaults(handler=_run_replay)

    serve_parser = commands.add_parser(
        "serve",
        help="run the HTTP service (in-memory store unless --redis-url is given)",
        description="Run the SPARD service with uvicorn. Every SPARD_* environment variable "
        "is read too (API keys, limits, retention); the flags override them.",
    )
    serve_parser.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, default=None, help="port (default 8000)")
    serve_parser.add_argument("--workers", type=int, default=None, help="uvicorn worker processes")
    serve_parser.add_argument("--redis-url", default=None, help="e.g. redis://localhost:6379/0")
    serve_parser.add_argument("--log-level", default="info", help="uvicorn's (default: info)")
    serve_parser.set_defaults(handler=_run_serve)

    return parser


def _config(args: argparse.Namespace) -> spard.SpardConfig:
    overrides: dict[str, Any] = {"strategy": args.strategy}
    if args.pawa_mode is not None:
        overrides["pawa_mode"] = args.pawa_mode
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep:
            raise spard.InputError(f"--set expects KEY=VALUE; got {item!r}", field="set")
        if key not in spard.SpardConfig.model_fields:
            known = list(spard.SpardConfig.model_fields)
            hint = did_you_mean(key, known)
            raise spard.InputError(
                f"--set: unknown key {key!r}{hint}; keys: {', '.join(known)}", field="set"
            )
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    try:
        return spard.SpardConfig(**overrides)
    except ValidationError as exc:
        raise input_error(exc, "set") from None


def _run_replay(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise spard.InputError(f"no such file: {args.file}", field="file")
    config = _config(args)
    if args.plot == DEFAULT_PLOT:
        args.plot = Path(f"spard-replay-{args.file.stem}.png")
    for option, path in (("--plot", args.plot), ("--json", args.json)):
        # Checked before any work, not after the whole replay.
        if path is not None and not path.resolve().parent.is_dir():
            raise spard.InputError(f"{option}: no folder {path.parent}", field=option[2:])
    if args.plot is not None:
        from spard.service.cli.plots import require_matplotlib

        require_matplotlib()
    objectives = args.objectives.split(",") if args.objectives else None
    results = replay(read_replay_file(args.file), config, objectives)
    names = results[0].objectives
    print(_weights_table(results, names))
    if args.json is not None:
        with args.json.open("w", encoding="utf-8") as handle:
            for result in results:
                handle.write(json.dumps(result.to_dict()) + "\n")
    if args.plot is not None:
        from spard.service.cli.plots import plot_trajectories

        plot_trajectories(results, args.plot, title=args.file.name, config=config)
        print(f"wrote {args.plot}")
    return 0


def _run_serve(args: argparse.Namespace) -> int:
    import os
    import shutil
    import tempfile

    for flag, variable in [
        ("host", "SPARD_HOST"),
        ("port", "SPARD_PORT"),
        ("workers", "SPARD_WORKERS"),
        ("redis_url", "SPARD_REDIS_URL"),
    ]:
        value = getattr(args, flag)
        if value is not None:
            os.environ[variable] = str(value)
    try:
        import uvicorn

        from spard.service.settings import Settings, describe_error
    except ImportError:
        raise spard.InputError(
            "the service needs its extra: pip install '.[service]' in a clone of spard",
            field="serve",
        ) from None
    try:
        settings = Settings()
    except ValueError as exc:
        raise spard.InputError(describe_error(exc), field="settings") from None
    metrics_dir = None
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its counters here; /metrics in any worker sums them all.
        metrics_dir = tempfile.mkdtemp(prefix="spard-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    _check_port_free(settings.host, settings.port)
    store = "Redis" if settings.redis_url else "in-memory store"
    auth = "API keys" if settings.auth_required else "no auth (local)"
    root = f"http://{_url_host(settings.host)}:{settings.port}"
    print(f"spard {spard.__version__}: {store}, {auth}, {settings.workers} worker(s)")
    print(f"  curriculum page: {root}/   API docs: {root}/docs", flush=True)
    try:
        uvicorn.run(
            "spard.service.http.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=args.log_level,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _check_port_free(host: str, port: int) -> None:
    """Refuse a port something already listens on, naming the setting to change (uvicorn's
    own message is a bare Errno 98). Bound as uvicorn binds it (SO_REUSEADDR), so a port
    left in TIME_WAIT by a previous run still counts as free."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise spard.InputError(
                f"port {port} on {host} is in use: choose another with SPARD_PORT "
                f"(e.g. SPARD_PORT={port + 1} make serve) or --port",
                field="port",
            ) from None


def _url_host(host: str) -> str:
    """``host`` as it goes in a URL to type: a wildcard bind is reached on loopback."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _plain(docstring: str) -> str:
    """A docstring as terminal text: reStructuredText's double backquotes and ``::`` go."""
    return docstring.replace("``", "'").replace("::\n", ":\n")


def _weights_table(results: Sequence[spard.StepResult], names: Sequence[str]) -> str:
    widths = [max(len(name), 8) for name in names]
    header = "  ".join(["step".rjust(6), *(n.rjust(w) for n, w in zip(names, widths, strict=True))])
    rows = [header + "  zero-signal", "-" * (len(header) + 13)]
    for result in results:
        cells = [
            f"{w:.4f}".rjust(width) for w, width in zip(result.reward_weights, widths, strict=True)
        ]
        zero = f"{int(result.zero_signal.sum())}/{result.zero_signal.size}"
        rows.append("  ".join([str(result.step).rjust(6), *cells]) + "  " + zero.rjust(11))
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())

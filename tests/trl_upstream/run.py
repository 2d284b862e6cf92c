"""Run TRL's own ``test_grpo_trainer.py`` offline against TRL or ``SpardGRPOTrainer``.

    python -m tests.trl_upstream.run --tests TRL/tests --mode plain --out OUT
    python -m tests.trl_upstream.run --tests TRL/tests --mode spard --out OUT
    python -m tests.trl_upstream.run --compare OUT
    python -m tests.trl_upstream.run --mode spard --rewards --out OUT_REWARDS  # 20 tests

``--tests`` defaults to ``$TRL_TESTS``, ``--cache`` to ~/.cache/spard/trl_upstream;
``--workers 2`` runs pytest-xdist.

A run builds (or reuses, by version key) the offline hub cache, then runs pytest on the
upstream test file with :mod:`spard_upstream_plugin`, offline environment variables and the
mode, and writes ``OUT/<mode>.json``: counts, runtime and each test id's outcome (passed,
failed, skipped, xfailed) with a short reason. ``--compare`` lists the tests that pass
in ``plain`` but not in the other modes found in OUT. The upstream files are never copied into
this repository; pass their folder with ``--tests``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TEST_FILE = "test_grpo_trainer.py"
MODES = ("plain", "static", "spard")
REWARD_TESTS = "reward or normalize_then_sum"
"""``-k`` selecting the 20 upstream tests that exercise rewards: reward functions and models,
weights, None rewards, aggregation and ``scale_rewards``."""
DEFAULT_CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spard" / "trl_upstream"
)


def prepare_tests(tests: Path) -> None:
    """Make the upstream folder importable as package ``tests`` with a usable ``testing_utils``."""
    if not (tests / TEST_FILE).is_file():
        raise SystemExit(
            f"{tests / TEST_FILE} not found: pass --tests (or TRL_TESTS) the tests folder of a "
            "checkout of TRL's repository (git clone -b v1.16.0 https://github.com/huggingface/trl)"
        )
    (tests / "__init__.py").touch()
    utils = tests / "testing_utils.py"
    shim = HERE / "testing_utils_shim.py"
    current = utils.read_text() if utils.exists() else ""
    if "class TrlTestCase" in current and "Stand-in for TRL" not in current:
        return  # a real upstream version that has what the test module imports
    if current and "Stand-in for TRL" not in current:
        stored = tests / "testing_utils.stored.py"
        if not stored.exists():
            utils.rename(stored)
    if current != shim.read_text():
        shutil.copyfile(shim, utils)


def offline_env(cache: Path, mode: str) -> dict[str, str]:
    """The environment of the pytest process: offline hub, the cache, the mode, the plugin path."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(cache / "hf_home"),
        HF_HUB_CACHE=str(cache / "hub"),
        HF_DATASETS_CACHE=str(cache / "hf_home" / "datasets"),
        SPARD_TRL_CACHE=str(cache),
        SPARD_TRL_MODE=mode,
        TOKENIZERS_PARALLELISM="false",
        WANDB_DISABLED="true",
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
        PYTHONPATH=os.pathsep.join(
            p for p in (str(HERE), str(REPO), env.get("PYTHONPATH", "")) if p
        ),
    )
    return env


def _reason(node: ET.Element) -> str:
    text = node.get("message") or (node.text or "")
    return " ".join(text.split())[:300]


def parse_junit(path: Path) -> dict[str, dict[str, str]]:
    """Each test id's outcome and short reason, from pytest's JUnit XML."""
    results: dict[str, dict[str, str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        module_class = case.get("classname", "")
        test_id = f"{module_class.rsplit('.', 1)[-1]}::{case.get('name', '')}"
        outcome, reason = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, reason = "failed", _reason(child)
            elif child.tag == "skipped":
                xfail = child.get("type") == "pytest.xfail"
                outcome, reason = ("xfailed" if xfail else "skipped"), _reason(child)
        results[test_id] = {"outcome": outcome, "reason": reason}
    return results


def run_mode(args: argparse.Namespace) -> dict[str, Any]:
    """Run the upstream tests in one mode and write ``OUT/<mode>.json``."""
    sys.path.insert(0, str(REPO))
    from tests.trl_upstream import offline_hub

    tests = Path(args.tests).resolve()
    out = Path(args.out).resolve()
    cache = Path(args.cache).resolve()
    out.mkdir(parents=True, exist_ok=True)
    built = offline_hub.ensure(cache, args.qwen_ids)
    print(("built" if built else "reusing") + f" offline cache {cache}", flush=True)
    prepare_tests(tests)
    junit = out / f"junit-{args.mode}.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(tests / TEST_FILE),
        "-p",
        "spard_upstream_plugin",
        "-p",
        "no:cacheprovider",
        "-q",
        "-rfEs",
        f"--junitxml={junit}",
        "-o",
        "junit_family=xunit1",
    ]
    if args.workers > 1:
        command += ["-n", str(args.workers)]
    selection = args.k or (REWARD_TESTS if args.rewards else "")
    if selection:
        command += ["-k", selection]
    command += args.pytest_args
    started = time.monotonic()
    log = out / f"pytest-{args.mode}.log"
    with log.open("w") as sink:
        proc = subprocess.run(
            command,
            cwd=tests.parent,
            env=offline_env(cache, args.mode),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    runtime = time.monotonic() - started
    results = parse_junit(junit) if junit.exists() else {}
    counts: dict[str, int] = {}
    for result in results.values():
        counts[result["outcome"]] = counts.get(result["outcome"], 0) + 1
    report = {
        "mode": args.mode,
        "selection": selection,
        "pytest_exit": proc.returncode,
        "runtime_s": round(runtime, 1),
        "counts": counts,
        "tests": dict(sorted(results.items())),
    }
    (out / f"{args.mode}.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"{args.mode}: {counts} in {runtime:.0f}s (pytest exit {proc.returncode}); log {log}")
    return report


def compare(out: Path) -> list[str]:
    """Lines naming each test that passes in ``plain`` but not in another mode found in ``out``."""
    plain = json.loads((out / "plain.json").read_text())["tests"]
    lines: list[str] = []
    for mode in MODES[1:]:
        path = out / f"{mode}.json"
        if not path.exists():
            continue
        report = json.loads(path.read_text())
        if report["pytest_exit"] not in (0, 1):  # 2+: interrupted, or the module did not load
            lines.append(f"{mode}\tpytest exit {report['pytest_exit']}\t(the whole run)\t")
        other = report["tests"]
        selection = report.get("selection", "")
        for test_id, result in plain.items():
            if selection and test_id not in other:
                continue  # a -k run (the reward tests): only what it selected is compared
            theirs = other.get(test_id, {"outcome": "missing", "reason": ""})
            if result["outcome"] == "passed" and theirs["outcome"] != "passed":
                lines.append(f"{mode}\t{theirs['outcome']}\t{test_id}\t{theirs['reason'][:200]}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Command line: run one mode, or compare the modes already run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tests",
        default=os.environ.get("TRL_TESTS", ""),
        help="folder holding TRL's test_grpo_trainer.py (default: $TRL_TESTS)",
    )
    parser.add_argument("--mode", choices=MODES, default="plain")
    parser.add_argument(
        "--out", default="trl_upstream_out", help="folder for the JSON reports and logs"
    )
    parser.add_argument(
        "--cache", default=str(DEFAULT_CACHE), help="offline hub cache (built when stale)"
    )
    parser.add_argument("--workers", type=int, default=1, help="pytest-xdist workers (-n)")
    parser.add_argument("-k", default="", help="pytest -k expression")
    parser.add_argument(
        "--rewards", action="store_true", help=f"only the reward tests (-k {REWARD_TESTS!r})"
    )
    parser.add_argument(
        "--qwen-ids", action="store_true", help="full-size Qwen vocabularies (slow on CPU)"
    )
    parser.add_argument(
        "--compare", metavar="OUT", help="compare the modes' reports in OUT and exit"
    )
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    if args.compare:
        lines = compare(Path(args.compare))
        print("\n".join(lines) if lines else "no test passes in plain and fails in another mode")
        return 1 if lines else 0
    run_mode(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

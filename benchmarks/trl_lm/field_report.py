"""The field's methods on the TRL benchmark, added after the default was frozen (issue 27).

``python -m benchmarks.trl_lm.field_report RUNS_DIR --out DIR`` reads the field arms' result
files (``protocol.FIELD_ARMS``, named by their own hash) and the frozen protocol's files of the
arms they are compared with, and writes ``field.json`` and ``field.md`` into ``DIR``. The
endpoint is the frozen protocol's (the held-out mean at the final step); every comparison is
paired by seed with a plain 95% t-interval: exploratory, no multiplicity claim
(``PREREGISTRATION.md``, "Added after the freeze").
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.trl_lm.protocol import ARMS, FIELD_ARMS
from benchmarks.trl_lm.regressions import markdown_lines as regression_lines
from benchmarks.trl_lm.regressions import summarise_regressions
from benchmarks.trl_lm.report import endpoints, paired

# What every field arm is compared with: the default, GDPO, and GRPOavg at both judge scales.
REFERENCES = ("spard", "gdpo", "grpo_avg_unit", "grpo_avg_raw")


def _by_protocol(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs of the protocol hash most of ``runs`` carry."""
    if not runs:
        return []
    digest = Counter(run.get("protocol_hash", "") for run in runs).most_common(1)[0][0]
    return [run for run in runs if run.get("protocol_hash", "") == digest]


def load(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(field arms' runs, frozen protocol's runs) in ``folder``, one protocol hash each."""
    runs = [json.loads(path.read_text()) for path in sorted(folder.glob("*-seed*-*.json"))]
    field = _by_protocol([run for run in runs if run["arm"] in FIELD_ARMS])
    frozen = _by_protocol([run for run in runs if run["arm"] in ARMS])
    return field, frozen


def summarise(field: list[dict[str, Any]], frozen: list[dict[str, Any]]) -> dict[str, Any]:
    """Per field arm: its final means and its paired differences from each reference arm."""
    means: dict[str, dict[int, float]] = {}
    worst: dict[str, dict[int, float]] = {}
    for run in [*field, *frozen]:
        points = endpoints(run)
        means.setdefault(run["arm"], {})[run["seed"]] = points["mean"]
        worst.setdefault(run["arm"], {})[run["seed"]] = points["worst"]
    rows: dict[str, Any] = {}
    for arm in (*FIELD_ARMS, *REFERENCES):
        if arm not in means:
            continue
        row: dict[str, Any] = {"seeds": sorted(means[arm]), "versus": {}}
        row["mean"] = sum(means[arm].values()) / len(means[arm])
        row["worst"] = sum(worst[arm].values()) / len(worst[arm])
        if arm in FIELD_ARMS:
            for reference in REFERENCES:
                if reference in means:
                    row["versus"][reference] = paired(means[arm], means[reference])
        rows[arm] = row
    return {
        "arms": rows,
        "field_hash": field[0]["protocol_hash"] if field else None,
        "regressions": summarise_regressions([*field, *frozen], [*FIELD_ARMS, *REFERENCES]),
    }


def markdown(summary: dict[str, Any]) -> str:
    """The field arms' table as a markdown page."""
    lines = [
        "# The field's methods on the TRL benchmark (added after the default was frozen)",
        "",
        f"Result files of hash `{summary['field_hash']}`; the frozen protocol's endpoint "
        "(held-out mean over the five objectives at the final step), mean over seeds. Each "
        "cell: the paired difference [plain 95% t-interval] (seeds). Exploratory: no "
        "multiplicity claim.",
        "",
        "| arm | seeds | mean | worst | " + " | ".join(f"- {r}" for r in REFERENCES) + " |",
        "| --- | --- | --- | --- | " + " | ".join("---" for _ in REFERENCES) + " |",
    ]
    for arm, row in summary["arms"].items():
        cells = [arm, str(len(row["seeds"])), f"{row['mean']:.3f}", f"{row['worst']:.3f}"]
        for reference in REFERENCES:
            item = row["versus"].get(reference)
            cells.append(
                "-"
                if item is None
                else f"{item['difference']:+.4f} [{item['ci'][0]:+.4f}, {item['ci'][1]:+.4f}] "
                f"({item['seeds']})"
            )
        lines.append("| " + " | ".join(cells) + " |")
    lines += regression_lines(summary["regressions"])
    return "\n".join(lines) + "\n"


def write(runs_folder: Path, out: Path) -> str:
    """Re-compute the field arms' report from ``runs_folder`` into ``out``; the page."""
    field, frozen = load(runs_folder)
    if not field:
        return "no finished runs of the field arms\n"
    summary = summarise(field, frozen)
    out.mkdir(parents=True, exist_ok=True)
    (out / "field.json").write_text(json.dumps(summary, indent=1) + "\n")
    page = markdown(summary)
    (out / "field.md").write_text(page)
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="the folder of per-run JSON files")
    parser.add_argument("--out", type=Path, required=True, help="where field.md goes")
    args = parser.parse_args()
    print(write(args.runs, args.out))


if __name__ == "__main__":
    main()

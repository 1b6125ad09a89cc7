"""Grouping accuracy on Loghub-2k: Sleuth's templater next to Drain3 and tuned Drain.

Three parsers group the `Content` column of each of the 16 systems' 2,000 labelled lines:

- `sleuth`: `bot.intake.templates.Templater`, its one configuration for every system;
- `drain3`: Drain3 0.9 with its defaults and no masks;
- `drain tuned`: Drain3 with the LogPAI benchmark's settings *per system* (similarity
  threshold, depth, masking regexes), the reference a product cannot use: a user's logs
  come unlabelled and untuned.

Grouping accuracy (GA) as the Loghub papers define it is computed here and, from the
predictions written as `<System>.csv` (LineId, group), by the independent scorer
`../shared/tools/loghub-ga`; the benchmark fails if the two disagree.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig
from pydantic import BaseModel

from bench.report import Result
from bot.intake.templates import Templater

REPO = Path(__file__).resolve().parents[1]
DATASET = REPO.parent / "shared" / "datasets" / "loghub-2k"
SCORER = REPO.parent / "shared" / "tools" / "loghub-ga"


class BenchmarkSetting(BaseModel):
    """LogPAI's Drain setting for one Loghub system (logparser, `Drain/benchmark.py`)."""

    layout: str  # Loghub's `log_format`: the header fields before `<Content>`
    regex: list[str]  # masked to `<*>` before parsing
    st: float  # similarity threshold
    depth: int  # prefix-tree depth


def _setting(layout: str, regex: list[str], st: float, depth: int) -> BenchmarkSetting:
    return BenchmarkSetting(layout=layout, regex=regex, st=st, depth=depth)


# The published per-dataset settings of the LogPAI benchmark (Zhu et al., ICSE 2019),
# reproduced as the reference: tuned Drain. Sleuth's templater reads none of this.
BENCHMARK_SETTINGS: dict[str, BenchmarkSetting] = {
    "HDFS": _setting(
        "<Date> <Time> <Pid> <Level> <Component>: <Content>",
        [r"blk_-?\d+", r"(\d+\.){3}\d+(:\d+)?"],
        0.5,
        4,
    ),
    "Hadoop": _setting(
        r"<Date> <Time> <Level> \[<Process>\] <Component>: <Content>",
        [r"(\d+\.){3}\d+"],
        0.5,
        4,
    ),
    "Spark": _setting(
        "<Date> <Time> <Level> <Component>: <Content>",
        [r"(\d+\.){3}\d+", r"\b[KGTM]?B\b", r"([\w-]+\.){2,}[\w-]+"],
        0.5,
        4,
    ),
    "Zookeeper": _setting(
        r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>",
        [r"(/|)(\d+\.){3}\d+(:\d+)?"],
        0.5,
        4,
    ),
    "BGL": _setting(
        "<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> "
        "<Content>",
        [r"core\.\d+"],
        0.5,
        4,
    ),
    "HPC": _setting(
        "<LogId> <Node> <Component> <State> <Time> <Flag> <Content>",
        [r"=\d+"],
        0.5,
        4,
    ),
    "Thunderbird": _setting(
        r"<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location> "
        r"<Component>(\[<PID>\])?: <Content>",
        [r"(\d+\.){3}\d+"],
        0.5,
        4,
    ),
    "Windows": _setting(
        "<Date> <Time>, <Level>                  <Component>    <Content>",
        [r"0x.*?\s"],
        0.7,
        5,
    ),
    "Linux": _setting(
        r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>",
        [r"(\d+\.){3}\d+", r"\d{2}:\d{2}:\d{2}"],
        0.39,
        6,
    ),
    "Android": _setting(
        "<Date> <Time>  <Pid>  <Tid> <Level> <Component>: <Content>",
        [
            r"(/[\w-]+)+",
            r"([\w-]+\.){2,}[\w-]+",
            r"\b(\-?\+?\d+)\b|\b0[Xx][a-fA-F\d]+\b|\b[a-fA-F\d]{4,}\b",
        ],
        0.2,
        6,
    ),
    "HealthApp": _setting(r"<Time>\|<Component>\|<Pid>\|<Content>", [], 0.2, 4),
    "Apache": _setting(r"\[<Time>\] \[<Level>\] <Content>", [r"(\d+\.){3}\d+"], 0.5, 4),
    "Proxifier": _setting(
        r"\[<Time>\] <Program> - <Content>",
        [r"<\d+\ssec", r"([\w-]+\.)+[\w-]+(:\d+)?", r"\d{2}:\d{2}(:\d{2})*", r"[KGTM]B"],
        0.6,
        3,
    ),
    "OpenSSH": _setting(
        r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>",
        [r"(\d+\.){3}\d+", r"([\w-]+\.){2,}[\w-]+"],
        0.6,
        5,
    ),
    "OpenStack": _setting(
        r"<Logrecord> <Date> <Time> <Pid> <Level> <Component> \[<ADDR>\] <Content>",
        [r"((\d+\.){3}\d+,?)+", r"/.+?\s", r"\d+"],
        0.5,
        5,
    ),
    "Mac": _setting(
        r"<Month>  <Date> <Time> <User> <Component>\[<PID>\]( \(<Address>\))?: <Content>",
        [r"([\w-]+\.){2,}[\w-]+"],
        0.7,
        6,
    ),
}

Grouper = Callable[[str, Sequence[str]], list[str]]


def dataset_dir() -> Path:
    """The Loghub-2k folder beside the repository, or a clear failure."""
    if not DATASET.is_dir():
        raise SystemExit(
            f"Loghub-2k not found at {DATASET}: the benchmark reads ../shared/datasets/"
            "loghub-2k beside the repository (see ../shared/datasets/README.md)."
        )
    return DATASET


def systems(root: Path) -> list[str]:
    return sorted(
        d.name for d in root.iterdir() if (d / f"{d.name}_2k.log_structured.csv").is_file()
    )


def load_structured(root: Path, system: str) -> list[dict[str, str]]:
    with open(root / system / f"{system}_2k.log_structured.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def group_sleuth(system: str, contents: Sequence[str]) -> list[str]:
    """One fresh templater per system, the same configuration for all. A line's group is
    the current id of the template it was given (templates generalise as lines arrive)."""
    templater = Templater()
    ids = [templater.add(content).id for content in contents]
    return [templater.resolve(template_id) for template_id in ids]


def group_drain3_default(system: str, contents: Sequence[str]) -> list[str]:
    miner = TemplateMiner(config=TemplateMinerConfig())
    return [str(miner.add_log_message(content)["cluster_id"]) for content in contents]


def group_drain_tuned(system: str, contents: Sequence[str]) -> list[str]:
    setting = BENCHMARK_SETTINGS[system]
    config = TemplateMinerConfig()
    config.drain_sim_th = setting.st
    config.drain_depth = setting.depth
    # Drain3's mask `*` renders as `<*>`, Drain's own wildcard, as logparser substitutes.
    config.masking_instructions = [MaskingInstruction(regex, "*") for regex in setting.regex]
    miner = TemplateMiner(config=config)
    return [str(miner.add_log_message(content)["cluster_id"]) for content in contents]


PARSERS: dict[str, Grouper] = {
    "sleuth": group_sleuth,
    "drain3_default": group_drain3_default,
    "drain_tuned": group_drain_tuned,
}


def grouping_accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Share of lines whose predicted group holds exactly the lines of their true event."""
    true_groups: dict[str, set[int]] = defaultdict(set)
    predicted_groups: dict[str, set[int]] = defaultdict(set)
    for line, (event, group) in enumerate(zip(truth, predicted, strict=True)):
        true_groups[event].add(line)
        predicted_groups[group].add(line)
    correct = sum(
        len(members)
        for members in predicted_groups.values()
        if true_groups[truth[next(iter(members))]] == members
    )
    return correct / len(truth)


def write_predictions(
    folder: Path, system: str, line_ids: Sequence[str], groups: Sequence[str]
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{system}.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["LineId", "group"])
        writer.writerows(zip(line_ids, groups, strict=True))


def score_with_tool(folder: Path) -> tuple[float, dict[str, float]]:
    """Mean GA and GA per system from the independent scorer; its last line is JSON."""
    done = subprocess.run(
        [sys.executable, str(SCORER), str(folder)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"loghub-ga failed on {folder}: {done.stderr or done.stdout}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return float(figures["mean_ga"]), dict(figures["systems"])


def run() -> Result:
    root = dataset_dir()
    names = systems(root)
    ours: dict[str, dict[str, float]] = {parser: {} for parser in PARSERS}
    tool: dict[str, tuple[float, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="sleuth-loghub-") as tmp:
        for system in names:
            rows = load_structured(root, system)
            contents = [row["Content"] for row in rows]
            truth = [row["EventId"] for row in rows]
            for parser, group in PARSERS.items():
                predicted = group(system, contents)
                ours[parser][system] = grouping_accuracy(truth, predicted)
                line_ids = [row["LineId"] for row in rows]
                write_predictions(Path(tmp) / parser, system, line_ids, predicted)
        for parser in PARSERS:
            tool[parser] = score_with_tool(Path(tmp) / parser)
    return _result(names, ours, tool)


def _result(
    names: list[str],
    ours: dict[str, dict[str, float]],
    tool: dict[str, tuple[float, dict[str, float]]],
) -> Result:
    # The scorer rounds to 4 decimals: agreement within that rounding.
    disagreements = [
        f"{parser}/{system}: in-process {ours[parser][system]:.4f}, "
        f"loghub-ga {tool[parser][1][system]}"
        for parser in PARSERS
        for system in names
        if abs(ours[parser][system] - tool[parser][1][system]) > 6e-5
    ]
    if disagreements:
        raise RuntimeError(
            "GA disagrees with ../shared/tools/loghub-ga: " + "; ".join(disagreements)
        )
    rows = [[system, *(ours[parser][system] for parser in PARSERS)] for system in names]
    means = {parser: sum(ours[parser].values()) / len(names) for parser in PARSERS}
    tool_means = {parser: tool[parser][0] for parser in PARSERS}
    rows.append(["mean", *means.values()])
    return Result(
        name="loghub",
        columns=["system", "sleuth (one config)", "drain3 defaults", "drain tuned per system"],
        rows=rows,
        figures={
            "mean_ga": round(means["sleuth"], 4),
            "mean_ga_drain3_default": round(means["drain3_default"], 4),
            "mean_ga_drain_tuned": round(means["drain_tuned"], 4),
            "mean_ga_loghub_ga_tool": {parser: round(tool_means[parser], 4) for parser in PARSERS},
            "systems": {system: round(ours["sleuth"][system], 4) for system in names},
        },
        notes=[
            "GA on the Content column of Loghub-2k, labels as shipped in ../shared/datasets.",
            (
                "In-process GA equals ../shared/tools/loghub-ga on all "
                f"{len(names) * len(PARSERS)} system/parser pairs (within its 4-decimal rounding);"
            ),
            "its means: "
            + ", ".join(f"{parser} {value:.4f}" for parser, value in tool_means.items())
            + ".",
        ],
    )

"""One setting over several training seeds: the runs, their directories, and the verdict over them.

``nnprobe <probe> --seeds N`` and Python's :func:`execute_seeds` run the same setting N times, each seed in its
own run directory (``OUT/seed-<s>``, every file as a one-seed run writes it), then judge the claim over the
seeds with the probe's evidence rule (:meth:`nnprobe.entries.ProbeEntry.decide`: means with 95% t-intervals,
nulls, paired tests) and write ``OUT/seeds.json`` atomically. An interrupted set resumes seed by seed: finished
seeds are read back, not recomputed.

Seeds are ``seed, seed + 100, seed + 200, ...``: 100 apart, so that a probe which moves to the next usable seed
(the margin probe's live seed) keeps them distinct.

>>> seed_values(0, 3)
[0, 100, 200]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from nnprobe.entries import Verdict, get_probe
from nnprobe.errors import NNProbeError
from nnprobe.io import check_writable, write_json_atomic

if TYPE_CHECKING:
    from nnprobe.experiments.run import Run
    from nnprobe.results import Result
    from nnprobe.stats import Interval

SEED_STRIDE = 100
SEEDS_FILE = "seeds.json"
SEEDS_FORMAT = "nnprobe-seeds/1"


def seed_values(first: int, n: int) -> list[int]:
    """The ``n`` training seeds of a set that starts at ``first`` (100 apart)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise NNProbeError(f"--seeds is {n!r}; it must be a whole number >= 1", "pass --seeds 1 or more")
    return [int(first) + SEED_STRIDE * i for i in range(n)]


def seed_dir(out: str | Path, seed: int) -> Path:
    """The run directory of one seed of a set."""
    return Path(out) / f"seed-{seed}"


@dataclass
class SeedsResult:
    """The runs of one setting over seeds: ``results`` (one per seed, in ``seeds`` order), the interval of each
    summary column, and the verdict over the seeds (:class:`nnprobe.entries.Verdict`)."""

    probe: str
    seeds: list[int]
    results: list[Result]
    intervals: dict[str, Interval] = field(default_factory=dict)
    verdict: Verdict | None = None
    seconds: float = 0.0
    checkpoint: bool = False

    @property
    def summaries(self) -> list[dict[str, Any]]:
        return [r.summary() for r in self.results]

    def to_dict(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "format": SEEDS_FORMAT,
            "probe": self.probe,
            "seeds": list(self.seeds),
            "runs": [seed_dir(".", s).name for s in self.seeds],
            "checkpoint": self.checkpoint,
            "intervals": {k: i.to_dict() for k, i in self.intervals.items()},
            "verdict": None
            if v is None
            else {"outcome": v.word, "holds": v.holds, "sentence": v.sentence, "details": v.details},
            "summaries": self.summaries,
            "seconds": self.seconds,
        }

    def table(self) -> str:
        """Each summary column's mean [95% t-interval] over the seeds, and the verdict."""
        from nnprobe.results import text_table  # lazy: keeps this module light for the CLI's --help

        rows = [
            {
                "measure": k,
                "mean": i.mean,
                "95% t-interval": "" if not i.has_interval else f"[{i.low:.4f}, {i.high:.4f}]",
                "seeds": i.n,
            }
            for k, i in self.intervals.items()
        ]
        what = "seeds" if not self.checkpoint else "seeds (checkpoint: only what the probe draws varies)"
        lines = [
            f"{self.probe} over {len(self.seeds)} {what}: {', '.join(map(str, self.seeds))}",
            *("  " + line for line in text_table(rows, ["measure", "mean", "95% t-interval", "seeds"])),
        ]
        if self.verdict is not None:
            lines.append(f"finding: {self.verdict.sentence}")
        return "\n".join(lines)


def judge_seeds(probe: str, summaries: list[dict[str, Any]]) -> tuple[dict[str, Interval], Verdict | None]:
    """``(intervals, verdict)`` over the summaries of one setting's seeds: the t-interval of every summary column
    of the probe that was measured, and the probe's verdict over the seeds (None without a rule)."""
    from nnprobe.stats import over_seeds  # lazy: scipy off the --help path

    entry = get_probe(probe)
    intervals: dict[str, Interval] = {}
    for key in entry.summary_columns:
        interval = over_seeds(summaries, key)
        if interval is not None:
            intervals[key] = interval
    has_rule = entry.evidence is not None or entry.verdict is not None
    return intervals, (entry.decide(summaries) if has_rule and summaries else None)


def execute_seeds(
    run: Run,
    n: int,
    out: str | Path,
    *,
    mode: str = "new",
    progress: bool | None = None,
    on_event: Callable[[str, Any], object] | None = None,
) -> SeedsResult:
    """Execute ``run`` with ``n`` seeds (:func:`seed_values` from its own seed) into ``out/seed-<s>``, judge the
    claim over them and write ``out/seeds.json``. ``mode`` applies to every seed's directory (``resume``: finished
    seeds are read back). With a checkpoint, the seeds vary only what the probe itself draws or trains.

    >>> res = execute_seeds(Run.from_flat("codes", {"epochs": 2}), 3, "runs/codes-seeds")   # doctest: +SKIP
    >>> print(res.table())                                                                  # doctest: +SKIP
    """
    start = time.perf_counter()
    out = Path(out)
    check_writable(out)
    seeds = seed_values(run.train.seed, n)
    if mode == "new" and (out / "result.json").is_file():
        raise NNProbeError(
            f"{out} holds a one-seed run; --seeds writes one directory per seed under --out",
            "choose another --out, or pass --overwrite",
        )
    members = [run.replace(seed=seed) for seed in seeds]
    if _can_batch(members, out, mode):
        results = _batched(members, out, mode)
    else:
        results = []
        for seed, member in zip(seeds, members, strict=True):
            if on_event is not None:
                on_event("seed", {"seed": seed, "index": len(results), "of": len(seeds)})
            results.append(member.execute(seed_dir(out, seed), mode=mode, progress=progress, on_event=on_event))
    intervals, verdict = judge_seeds(run.probe, [r.summary() for r in results])
    if verdict is not None and run.model.checkpoint is not None:
        verdict = replace(
            verdict,
            sentence=verdict.sentence + " (one checkpoint: the seeds vary only what the probe "
            "draws or trains, not the model's training)",
        )
    outcome = SeedsResult(
        run.probe,
        seeds,
        results,
        intervals,
        verdict,
        time.perf_counter() - start,
        checkpoint=run.model.checkpoint is not None,
    )
    write_json_atomic(out / SEEDS_FILE, outcome.to_dict())
    return outcome


def _can_batch(members: Sequence[Run], out: Path, mode: str) -> bool:
    """Seeds train as one batched program when the probe and model allow it (:func:`~nnprobe.experiments.group.
    group_key`) and no seed directory is to be resumed (a resumed set finishes seed by seed)."""
    from nnprobe.experiments.group import group_key  # lazy: torch off the --help path

    if len(members) < 2 or (mode == "resume" and any(seed_dir(out, m.train.seed).exists() for m in members)):
        return False
    keys = {group_key(m) for m in members}
    return len(keys) == 1 and None not in keys


def _batched(members: Sequence[Run], out: Path, mode: str) -> list[Result]:
    """Train the seeds as one ensemble, measure each, write each seed's run directory; a failure is raised."""
    from nnprobe.experiments.group import execute_group  # lazy: torch off the --help path

    # bad settings fail before anything is trained or written (as Run.execute does); the seeds read the same files
    prepared = members[0].preflight()
    files = prepared.dataset.meta.get("files", [])
    start = time.perf_counter()
    outcomes = execute_group(members)
    share = (time.perf_counter() - start) / len(members)
    for member, outcome in zip(members, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            raise outcome
        member.record(
            seed_dir(out, member.train.seed),
            outcome,
            mode=mode,
            seconds=share,
            data_files=files,
            prepared=prepared,
            trained_with=f"one batched program with the other {len(members) - 1} seeds of the set",
        )
    return cast("list[Result]", outcomes)  # none is an exception: the first one was raised


__all__ = [
    "SEEDS_FILE",
    "SEEDS_FORMAT",
    "SEED_STRIDE",
    "SeedsResult",
    "execute_seeds",
    "judge_seeds",
    "seed_dir",
    "seed_values",
]

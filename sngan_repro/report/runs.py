"""Reading finished (and failed) training runs back from their directories.

A run directory is what ``python -m sngan_repro.train`` writes (its layout: ``sngan_repro.run_directory``); in a
sweep, ``.hydra/overrides.yaml`` holds the job's point.
"""

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ..errors import ReportError
from ..metrics import instantiate_metrics, measured_in_training
from ..run_directory import RunDirectory

# overrides that say where a run writes or how it is launched, not what it computes
NOT_FACTORS = re.compile(r"^(hydra[./]|paths\.|ckpt_path$|trainer\.(devices|num_nodes|accelerator|strategy)$)")
EVERYTHING = 0  # EventAccumulator size guidance: keep every event, not a reservoir sample


@dataclass(frozen=True)
class FinalValue:
    """A run's final number of one metric: where it comes from and at which generator update."""

    value: float
    protocol: str
    g_step: int
    source: str  # "evaluation/<file>.json" or "last logged"


@dataclass(frozen=True)
class Curve:
    steps: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class Histogram:
    """A TensorBoard histogram: the values' range, bucket right edges (``limits``) and counts."""

    minimum: float
    maximum: float
    limits: np.ndarray
    counts: np.ndarray

    def density(self, edges: np.ndarray) -> np.ndarray:
        """The histogram re-binned on ``edges`` as a probability density: its cumulative count, linear within each
        bucket, read at the edges (TensorBoard's buckets differ from event to event)."""
        limits = np.clip(self.limits, self.minimum, self.maximum)
        cumulative = np.interp(edges, np.concatenate([[self.minimum], limits]),
                               np.concatenate([[0.0], np.cumsum(self.counts)]))
        return np.diff(cumulative) / (max(self.counts.sum(), 1.0) * np.diff(edges))


def natural_key(path: Path) -> list:
    """Sort key under which job 10 follows job 9."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def find_runs(root: Path) -> list[Path]:
    """Run directories at or under ``root`` (a run's own subfolders are not searched)."""
    if RunDirectory(root).is_run():
        return [root]
    found = []
    for child in sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=natural_key):
        found.extend(find_runs(child))
    return found


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    """{key: value} of Hydra override strings (``+key=v``, ``++key=v``; deletions ``~key`` are kept as 'deleted')."""
    parsed = {}
    for override in overrides:
        key, _, value = override.partition("=")
        if key.startswith("~"):
            parsed[key[1:]] = "deleted"
        else:
            parsed[key.lstrip("+")] = value
    return parsed


@dataclass
class Run:
    """One run directory, read lazily: what it is (overrides, choices, config), how it ended, what it measured."""

    directory: Path
    _events: dict = field(default_factory=dict, repr=False)

    @cached_property
    def files(self) -> RunDirectory:
        return RunDirectory(self.directory)

    @cached_property
    def record(self) -> dict:
        try:
            return self.files.read_record()
        except json.JSONDecodeError as error:
            raise ReportError(f"{self.files.record_file} is not valid JSON ({error}); repair it or move the run "
                              f"away.") from None

    @cached_property
    def config(self) -> DictConfig | None:
        path = self.files.config_file
        return OmegaConf.load(path) if path.is_file() else None

    @cached_property
    def overrides(self) -> dict[str, str]:
        """The command line's overrides that say what the run computes (not where it writes)."""
        path = self.files.overrides_file
        listed = yaml.safe_load(path.read_text()) if path.is_file() else self.record.get("overrides") or []
        return {key: value for key, value in parse_overrides(listed).items() if not NOT_FACTORS.match(key)}

    @cached_property
    def choices(self) -> dict[str, str]:
        if self.config is not None and self.config.get("choices") is not None:
            return OmegaConf.to_container(self.config.choices)
        return self.record.get("choices") or {}

    def value_of(self, key: str) -> str:
        """The run's value of an override key: a group's choice, else the config's value, else the override."""
        if key in self.choices:
            return str(self.choices[key])
        if self.config is not None:
            selected = OmegaConf.select(self.config, key, default=None, throw_on_missing=False)
            if selected is not None:
                return str(OmegaConf.to_container(selected) if isinstance(selected, DictConfig) else selected)
        return self.overrides.get(key, "—")

    def leaf_keys(self, key: str) -> list[str]:
        """``key``, or when the run's config holds a node there (an override like ``metrics.measures.x={...}``),
        the dotted keys of its values."""
        node = OmegaConf.select(self.config, key, default=None) if self.config is not None else None
        if not isinstance(node, DictConfig) or key in self.choices:
            return [key]
        return [leaf for child in node for leaf in self.leaf_keys(f"{key}.{child}")]

    @property
    def error(self) -> str | None:
        """The sentence that stopped the run: its ``error.txt`` (one line, 'ErrorClass: sentence'), else run.json's."""
        error = self.files.read_error()
        return error[1] if error is not None else self.record.get("error")

    @property
    def status(self) -> str:
        if self.files.error_file.is_file():
            return "failed"
        return self.record.get("status", "unknown")

    @property
    def g_step(self) -> int | None:
        """Generator updates the run reached (its last logged step when run.json does not say)."""
        if "g_step" in self.record:
            return self.record["g_step"]
        steps = [int(curve.steps[-1]) for curve in self.scalars().values() if len(curve.steps)]
        return max(steps) if steps else None

    @property
    def final_g_step(self) -> int | None:
        """The generator update of the run's final values."""
        return max((value.g_step for value in self.final.values()), default=self.g_step)

    # -- what it measured --------------------------------------------------------------------------------------
    def metric_protocols(self) -> dict[str, str]:
        """{name: protocol sentence} of the quality metrics the run measured during training, as its run.json
        recorded them once the metrics were prepared; for a run without that record, from its metrics preset's
        metric objects."""
        if "metrics" in self.record:
            return self.record["metrics"]
        if self.config is None or self.config.get("metrics") is None:
            return {}
        return measured_in_training(instantiate_metrics(self.config.metrics))

    @cached_property
    def final_evaluations(self) -> list[dict]:
        """The documents of ``python -m sngan_repro.evaluate`` of this run's latest evaluated checkpoint (every
        preset evaluated there), in file-name order."""
        folder = self.files.evaluation
        documents = []
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            document = json.loads(path.read_text())
            if document.get("g_step") is None:  # an evaluation of images (evaluate images=...), not of a checkpoint
                continue
            document["file"] = f"evaluation/{path.name}"
            documents.append(document)
        latest = max((document["g_step"] for document in documents), default=None)
        return [document for document in documents if document["g_step"] == latest]

    @cached_property
    def final(self) -> dict[str, FinalValue]:
        """{metric name: final value}: from the evaluation of the latest evaluated checkpoint where there is one
        (every preset evaluated there), else the last value logged during training."""
        final = {}
        for document in self.final_evaluations:
            for name, entry in document["results"].items():
                final[name] = FinalValue(float(entry["value"]), entry.get("protocol", ""), document["g_step"],
                                         document["file"])
        scalars = self.scalars()
        for name, protocol in self.metric_protocols().items():
            curve = scalars.get(name)
            if name not in final and curve is not None and len(curve.steps):
                final[name] = FinalValue(float(curve.values[-1]), protocol, int(curve.steps[-1]), "last logged")
        return final

    def evaluated_with(self) -> set[str]:
        """The metrics presets this run's final values were evaluated with (empty: last logged values)."""
        return {document.get("metrics_preset") for document in self.final_evaluations}

    def _accumulator(self) -> EventAccumulator | None:
        if "accumulator" not in self._events:
            folder = self.files.tensorboard
            accumulator = None
            if folder.is_dir() and any(folder.glob("events.out.tfevents.*")):
                accumulator = EventAccumulator(str(folder), size_guidance={"scalars": EVERYTHING,
                                                                           "histograms": EVERYTHING})
                accumulator.Reload()
            self._events["accumulator"] = accumulator
        return self._events["accumulator"]

    def scalars(self) -> dict[str, Curve]:
        """Every logged scalar as a curve over generator updates (a resumed run's repeated steps: the last write)."""
        if "scalars" not in self._events:
            accumulator, curves = self._accumulator(), {}
            for tag in accumulator.Tags()["scalars"] if accumulator else []:
                by_step = {event.step: event.value for event in accumulator.Scalars(tag)}
                steps = np.array(sorted(by_step), dtype=np.int64)
                curves[tag] = Curve(steps, np.array([by_step[s] for s in steps], dtype=np.float64))
            self._events["scalars"] = curves
        return self._events["scalars"]

    def histograms(self, tag: str) -> dict[int, Histogram]:
        """{generator update: histogram} of a TensorBoard histogram tag (e.g. pixels/generated)."""
        accumulator = self._accumulator()
        if accumulator is None or tag not in accumulator.Tags()["histograms"]:
            return {}
        return {event.step: Histogram(event.histogram_value.min, event.histogram_value.max,
                                      np.array(event.histogram_value.bucket_limit),
                                      np.array(event.histogram_value.bucket))
                for event in accumulator.Histograms(tag)}

    def last_checkpoint(self) -> Path | None:
        return self.files.latest_checkpoint()

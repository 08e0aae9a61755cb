"""A stand-in launcher for study tests: it writes each job's run folder as a finished, diverged, failed or preempted
run would (the record, the error sentence, the metric's protocol), without training."""

import math

from sngan_repro.errors import ConfigError, TrainingDivergedError
from sngan_repro.run_directory import RunDirectory

METRIC = "digits_fid/2k_vs_train1797"
PROTOCOL = "Frechet distance in a stand-in's features: 2000 samples vs 1797 training images"


def score(values: dict) -> float:
    """A stand-in metric of a run's overrides: best at lr 1e-3.5."""
    return abs(math.log10(float(values["optim.lr_g"])) + 3.5) + 0.01 * int(values.get("seed", 0))


class Launcher:
    """Writes each job's run folder as ``outcome(values)`` says: ("finished", value), ("diverged",), ("failed",),
    ("preempted",); raises ``Died`` at job number ``die_at`` (the driver dies with its batch running)."""

    class Died(Exception):
        pass

    def __init__(self, folder, outcome=lambda values: ("finished", score(values)), die_at=None):
        self.folder, self.outcome, self.die_at, self.jobs = folder, outcome, die_at, []

    def __call__(self, jobs):
        if self.die_at is not None and len(self.jobs) + len(jobs) > self.die_at:
            raise self.Died()
        for overrides in jobs:
            values = dict(text.split("=", 1) for text in overrides)
            self.jobs.append(values)
            run = RunDirectory(self.folder / values["hydra.sweep.subdir"])
            run.path.mkdir(parents=True, exist_ok=True)
            kind, *value = self.outcome(values)
            if kind == "finished":
                run.write_record({"status": "finished", "final_metrics": {METRIC: value[0], "digits_is/x": 1.0},
                                  "metrics": {METRIC: PROTOCOL, "digits_is/x": "a stand-in's score"}})
            elif kind == "diverged":
                run.write_error(TrainingDivergedError("Training diverged at generator step 5: loss/d is nan."))
            elif kind == "failed":
                run.write_error(ConfigError("a setting this run refused."))
            else:
                run.write_record({"status": kind})
        return [None] * len(jobs)

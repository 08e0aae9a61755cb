"""Preemption that loses nothing: a stop signal ends the run at the next safe point with a checkpoint, and
running the same command again (or the requeued job) continues from it.

Signals arrive between any two Python operations, e.g. between a critic's optimizer step and its
step counter; a checkpoint written there would not resume exactly. Lightning's own handlers act on
arrival (its SLURM handler saves at once) or per rank (its SIGTERM check), and under DDP ranks that
stop at different batches hang in their next collective. So, while training, the signals listed in
``signals`` only mark that a stop is wanted; after a training step, when every rank agrees, all ranks
save ``checkpoint`` (counters, optimizers, data position, noise position: the whole training state)
and stop cleanly. Under DDP the ranks agree by an all-reduce every ``check_every`` generator updates
(a tiny collective; a single process checks after every step at no cost).

The handlers the signals had before (SLURM's requeue through Lightning's auto-requeue for SIGUSR1, or
through submitit for SIGUSR2) are then run by ``hand_over`` once training has ended, so the job is
requeued as the launcher intends. ``train.run`` resumes from ``checkpoint`` when it exists.
"""

import signal
import threading
from pathlib import Path

from pytorch_lightning.callbacks import Callback

from ..errors import ConfigError
from ..run_directory import RunDirectory, now


class Preemption(Callback):
    """Stops on ``signals`` (names, e.g. SIGTERM) with ``checkpoint`` written and ``run.json`` in ``run_directory``
    saying so (see the module's docstring)."""

    def __init__(self, checkpoint: str, run_directory: str, signals: list[str] = ("SIGTERM", "SIGUSR1", "SIGUSR2"),
                 check_every: int = 10):
        if not isinstance(check_every, int) or check_every < 1:
            raise ConfigError(f"callbacks.preemption.check_every={check_every} must be an integer >= 1 (generator "
                              f"updates between the ranks' checks for a stop signal).")
        unknown = [name for name in signals if name not in signal.Signals.__members__]
        if unknown:
            raise ConfigError(f"callbacks.preemption.signals has {unknown[0]!r}, not a signal name; accepted: names "
                              f"such as SIGTERM, SIGUSR1, SIGUSR2.")
        self.checkpoint, self.run_directory = Path(checkpoint), RunDirectory(run_directory)
        self.check_every = check_every
        self.signals = [signal.Signals[name] for name in signals]
        self.received: list[signal.Signals] = []
        self.stopped = False  # did this callback stop the run
        self._previous: dict[signal.Signals, object] = {}  # the handlers in place when training started

    def on_train_start(self, trainer, pl_module) -> None:
        self.received, self.stopped, self._previous = [], False, {}
        if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
            return
        for signum in self.signals:  # after Lightning has installed its own (run later, see hand_over)
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._receive)

    def _receive(self, signum, frame) -> None:
        self.received.append(signal.Signals(signum))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.world_size == 1:
            wanted = bool(self.received)
        elif pl_module.generator_stepped and pl_module.g_step % self.check_every == 0:
            wanted = trainer.strategy.reduce_boolean_decision(bool(self.received), all=False)
        else:
            return
        if wanted and not trainer.should_stop:  # a run that has just ended keeps its own final checkpoint
            trainer.save_checkpoint(self.checkpoint)
            trainer.should_stop = self.stopped = True
            if trainer.is_global_zero:
                names = [signum.name for signum in self.received] or ["a signal to another rank"]
                self.run_directory.update_record(status="preempted", finished=now(), g_step=pl_module.g_step,
                                                 signals=names, resume_from=str(self.checkpoint))
                print(f"{names[0]} received: saved {self.checkpoint} at generator step {pl_module.g_step}; "
                      f"the same command continues the run from there.", flush=True)

    def on_train_end(self, trainer, pl_module) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def hand_over(self) -> None:
        """Run the handlers that the received signals had when training started (e.g. a SLURM requeue), once
        training is over; SIGTERM's is Lightning's stop request, which the stop itself has served."""
        for signum in dict.fromkeys(self.received):
            handler = self._previous.get(signum)
            if signum != signal.SIGTERM and callable(handler):
                handler(signum, None)

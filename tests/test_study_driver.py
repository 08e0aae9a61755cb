"""The study driver (sngan_repro.study.driver) with a stand-in launcher that writes each run's folder as a finished,
diverged, failed or preempted run would: every method gets exactly n_draws results, draw 0 its own setting, its best
draw the seeds' re-runs; an interrupted study reruns only what a dead driver left running and makes the same draws as
an uninterrupted one; diverged and failed draws are kept; a second driver, a changed space or an unlogged metric are
refused in one sentence. The real command line and launchers: tests/test_study_command.py."""

import fcntl
import math

import optuna
import pytest
from helpers.study import METRIC, Launcher, score
from omegaconf import OmegaConf
from optuna.trial import TrialState

from sngan_repro import compose
from sngan_repro.errors import ConfigError
from sngan_repro.study.driver import LOCK_FILE, StudyDriver, open_storage, progress
from sngan_repro.study.preset import read_preset

PRESET = {"base": ["experiment=quickstart"],
          "methods": {"sn": {"overrides": ["norm=sn"]},
                      "gp": {"overrides": ["norm=gp", "loss=wgan"],
                             "space": {"norm.weight": {"distribution": "log_uniform", "low": 0.1, "high": 100.0}}}},
          "space": {"optim.lr_g": {"distribution": "log_uniform", "low": 1e-5, "high": 1e-2},
                    "optim.n_dis": {"distribution": "choice", "choices": [1, 5]}},
          "n_draws": 5, "seeds": [1, 2], "metric": METRIC, "direction": "minimize", "sampler": "random", "seed": 0}


def preset(**changes):
    return read_preset("test", OmegaConf.create({**PRESET, **changes}), compose)


def driver(tmp_path, launcher, storage=None, **changes):
    return StudyDriver(preset(**changes), tmp_path, storage or open_storage(None, tmp_path), launcher, batch=2,
                       log=lambda line: None)


def trials(storage, name):
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def test_every_method_gets_n_draws_then_its_best_draw_with_each_seed(tmp_path):
    launcher = Launcher(tmp_path)
    study = driver(tmp_path, launcher)
    assert study.run()
    for method in ("sn", "gp"):
        draws = trials(study.storage, f"test/{method}")
        assert [trial.number for trial in draws] == [0, 1, 2, 3, 4]
        assert all(trial.state == TrialState.COMPLETE for trial in draws)
        assert draws[0].params == study.preset.methods[method].published  # draw 0: the method's own setting
        best = min(draws, key=lambda trial: trial.value)
        reruns = trials(study.storage, f"test/{method}/seeds")
        assert [(trial.user_attrs["draw"], trial.params["seed"]) for trial in reruns] == [(best.number, 1),
                                                                                        (best.number, 2)]
        assert all(trial.params.items() >= best.params.items() for trial in reruns)
        assert (tmp_path / method / f"draw_{best.number:03d}_seed_2").is_dir()
    assert len(launcher.jobs) == 2 * (5 + 2)
    # each run is the base, the method's overrides, then the draw (floats in full precision), in its own folder
    first = launcher.jobs[0]
    assert list(first)[:3] == ["experiment", "norm", "optim.lr_g"] and first["hydra.sweep.subdir"] == "sn/draw_000"
    assert study.run() and len(launcher.jobs) == 14  # a finished study runs nothing again


def test_an_interrupted_study_reruns_only_what_the_dead_driver_left_running_and_makes_the_same_draws(tmp_path):
    uninterrupted = driver(tmp_path / "whole", Launcher(tmp_path / "whole"))
    uninterrupted.run()

    dying = Launcher(tmp_path / "cut", die_at=5)  # the third batch (jobs 5 and 6) is asked for, then the driver dies
    with pytest.raises(Launcher.Died):
        driver(tmp_path / "cut", dying).run()
    storage = open_storage(None, tmp_path / "cut")
    running = [(method, trial.number) for method in ("sn", "gp") for trial in trials(storage, f"test/{method}")
               if trial.state == TrialState.RUNNING]
    assert running == [("sn", 2), ("gp", 2)]

    again = Launcher(tmp_path / "cut")
    assert driver(tmp_path / "cut", again).run()
    assert [job["hydra.sweep.subdir"] for job in again.jobs[:2]] == ["sn/draw_002", "gp/draw_002"]
    assert len(dying.jobs) + len(again.jobs) == len(uninterrupted.launch.jobs)  # nothing ran twice
    for name in ("test/sn", "test/gp", "test/sn/seeds", "test/gp/seeds"):
        cut, whole = trials(storage, name), trials(uninterrupted.storage, name)
        assert [(t.number, t.params, t.value, t.state) for t in cut] == \
               [(t.number, t.params, t.value, t.state) for t in whole]


def test_raising_n_draws_adds_only_new_draws(tmp_path):
    launcher = Launcher(tmp_path)
    driver(tmp_path, launcher, seeds=[]).run()
    before = {name: trials(open_storage(None, tmp_path), name) for name in ("test/sn", "test/gp")}
    driver(tmp_path, launcher, seeds=[], n_draws=8).run()
    assert len(launcher.jobs) == 2 * 8
    for name, old in before.items():
        new = trials(open_storage(None, tmp_path), name)
        assert [trial.number for trial in new] == list(range(8))
        assert [(t.params, t.value) for t in new[:5]] == [(t.params, t.value) for t in old]


def test_diverged_and_failed_draws_are_kept_as_results_and_counted(tmp_path):
    def outcome(values):
        lr, folder = float(values["optim.lr_g"]), values["hydra.sweep.subdir"]
        return ("diverged",) if lr > 1e-3 else ("failed",) if folder.endswith(("_003", "_007")) else \
            ("finished", score(values))

    launcher = Launcher(tmp_path, outcome)
    study = driver(tmp_path, launcher, n_draws=12, seeds=[])
    assert study.run()
    draws = trials(study.storage, "test/sn")
    lrs = [trial.params["optim.lr_g"] for trial in draws]
    diverged = [trial.number for trial in draws if trial.state == TrialState.COMPLETE and trial.value == math.inf]
    failed = [trial.number for trial in draws if trial.state == TrialState.FAIL]
    assert diverged == [n for n, lr in enumerate(lrs) if lr > 1e-3] and diverged  # the worst value, kept
    assert failed == [n for n, lr in enumerate(lrs) if n in (3, 7) and lr <= 1e-3] and failed
    assert len(draws) == 12
    line = progress(study.preset, study.storage).splitlines()[0]
    assert line.startswith("  sn: 12 of 12 draws, best") and f"{len(diverged)} diverged, {len(failed)} failed" in line
    assert study.run() and len(launcher.jobs) == 24  # kept: not run again


def test_a_preempted_run_stops_the_study_and_stays_to_be_continued(tmp_path):
    launcher = Launcher(tmp_path, lambda values: ("preempted",) if values["hydra.sweep.subdir"] == "gp/draw_001"
                        else ("finished", score(values)))
    study = driver(tmp_path, launcher)
    assert not study.run()
    assert study.stopped.startswith("gp/draw_001 stopped before its end") and len(launcher.jobs) == 4
    assert trials(study.storage, "test/gp")[1].state == TrialState.RUNNING
    launcher.outcome = lambda values: ("finished", score(values))
    assert driver(tmp_path, launcher).run()
    assert [job["hydra.sweep.subdir"] for job in launcher.jobs[4:6]] == ["sn/draw_002", "gp/draw_001"]


def test_a_second_driver_of_the_same_study_is_refused_while_the_first_runs(tmp_path):
    with open(tmp_path / LOCK_FILE, "w") as lock:
        lock.write("process 4242 on node7\n")
        lock.flush()
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ConfigError, match=rf"^The study test in {tmp_path} is being run by process 4242 on "
                                              rf"node7; wait for it to end, or stop it, before running it again\.$"):
            driver(tmp_path, Launcher(tmp_path)).run()


def test_continuing_a_study_with_another_space_is_refused(tmp_path):
    driver(tmp_path, Launcher(tmp_path), n_draws=2, seeds=[]).run()
    space = {**PRESET["space"], "optim.lr_g": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-2}}
    with pytest.raises(ConfigError, match=r"^The study test in .* drew sn's runs with other settings \(space "
                                          r"differ\); only n_draws and seeds may change"):
        driver(tmp_path, Launcher(tmp_path), n_draws=2, seeds=[], space=space).run()


def test_a_finished_run_without_the_metric_is_a_failed_draw_naming_what_it_logged(tmp_path):
    from sngan_repro.study.driver import Outcome, read_outcome

    run = tmp_path / "run"
    Launcher(tmp_path)([["optim.lr_g=1e-3", "hydra.sweep.subdir=run"]])
    outcome = read_outcome(run, "fid/50k_vs_train50k", since=0.0, escaped=None)
    assert outcome == Outcome("failed", None,
                              f"the run logged no fid/50k_vs_train50k; its metrics: {METRIC}, digits_is/x")


def test_an_optuna_journal_file_holds_a_study_as_the_default_sqlite_does(tmp_path):
    journal = tmp_path / "shared" / "study.journal"
    journal.parent.mkdir()
    storage = open_storage(str(journal), tmp_path)
    assert isinstance(storage, optuna.storages.JournalStorage)
    study = driver(tmp_path, Launcher(tmp_path), storage, n_draws=3, seeds=[])
    assert study.run() and journal.stat().st_size > 0
    sqlite = driver(tmp_path / "sqlite", Launcher(tmp_path / "sqlite"), n_draws=3, seeds=[])
    sqlite.run()
    for name in ("test/sn", "test/gp"):
        assert [(t.params, t.value) for t in trials(storage, name)] == \
               [(t.params, t.value) for t in trials(sqlite.storage, name)]


def test_a_storage_that_cannot_be_opened_is_refused_in_one_sentence(tmp_path):
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.storage='nosuchdb://x' cannot be opened \(.*\); give a "
                                          r"database URL such as sqlite:///study.db or the path of a journal file\.$"):
        open_storage("nosuchdb://x", tmp_path)

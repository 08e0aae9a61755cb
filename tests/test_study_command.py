"""Studies through the real command line (``python -m sngan_repro.train -m study=<name>``, tiny runs on the digits):
the sweeper is found by Hydra, each draw is an ordinary run directory; a driver killed by SIGTERM and started again
finishes with exactly n_draws results per method, the draws an uninterrupted study makes; a diverging draw is kept as
diverged; two runs at a time through the submitit local launcher share one storage without a duplicate draw; bad
study input is refused in one sentence before any run."""

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sngan_repro.study.driver import open_storage

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DRAWS = 2  # per method: a study of sn and gp is 2 x (2 draws + the best one again with seed 1) = 6 runs
# each run: a few seconds on the digits (8 updates, 8-px images, a very slim network, the digits metrics on few
# samples)
TINY = ["dataset.image_size=8", "arch.width=0.125", "train.steps=8", "train.batch_size=16",
        "train.log_every=4", "train.sample_every=8", "train.num_samples=16", "train.checkpoint_every=4",
        "metrics.measures.digits.every=8", "metrics.measures.digits.inception_score.samples=200",
        "metrics.measures.digits.fid.samples=200", "trainer.enable_model_summary=false",
        f"study.n_draws={DRAWS}", "study.seeds=[1]", "~study.methods.wn", "~study.methods.none"]
METRIC = "digits_fid/200_vs_train1797"


def study_command(folder: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "sngan_repro.train", "-m", "study=digits", f"hydra.sweep.dir={folder}", *TINY,
            f"study.metric={METRIC}", *overrides]


def run_study(folder: Path, *overrides: str, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run(study_command(folder, f"paths.cache_dir={cache}", *overrides), cwd=ROOT,
                          capture_output=True, text=True, timeout=900)


def results(folder: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=open_storage(None, folder)).get_trials()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")  # the digits classifier, trained once for the module's studies


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, cache):
    folder = tmp_path_factory.mktemp("uninterrupted")
    result = run_study(folder, cache=cache)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, result


def test_a_study_runs_each_draw_as_an_ordinary_run_and_says_where_its_report_is(uninterrupted):
    folder, result = uninterrupted
    for method in ("sn", "gp"):
        draws = results(folder, f"digits/{method}")
        assert [trial.state for trial in draws] == [TrialState.COMPLETE] * DRAWS
        for trial in draws:
            run = folder / method / f"draw_{trial.number:03d}"
            record = (run / "run.json").read_text()
            assert '"status": "finished"' in record and f'"{METRIC}": {trial.value}' in record.replace("\n", "")
        assert len(results(folder, f"digits/{method}/seeds")) == 1
    assert f"its report: python -m sngan_repro.report {folder}" in result.stdout


def test_a_killed_study_continues_to_exactly_its_draws_without_a_duplicate(uninterrupted, tmp_path, cache):
    folder, one_method = tmp_path / "study", ("~study.methods.gp", f"paths.cache_dir={cache}")
    driver = subprocess.Popen(study_command(folder, *one_method), cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    # SIGTERM once the second run (sn's second draw) has started: while it trains, it saves its checkpoint and stops,
    # and so does the study; before its training starts, the signal ends the driver at once. Either way that draw is
    # left RUNNING.
    deadline = time.monotonic() + 600
    while not (folder / "sn" / "draw_001" / "run.json").is_file():
        assert driver.poll() is None and time.monotonic() < deadline, "the study ended before it was stopped"
        time.sleep(0.1)
    driver.send_signal(signal.SIGTERM)
    driver.wait(timeout=300)
    done = [trial.state for trial in results(folder, "digits/sn")]
    assert done == [TrialState.COMPLETE, TrialState.RUNNING], done

    result = subprocess.run(study_command(folder, *one_method), cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    whole, _ = uninterrupted
    draws = results(folder, "digits/sn")
    assert [(t.number, t.state) for t in draws] == [(n, TrialState.COMPLETE) for n in range(DRAWS)]
    assert [t.params for t in draws] == [t.params for t in results(whole, "digits/sn")]
    best = min(draws, key=lambda trial: trial.value).number
    assert sorted(path.name for path in (folder / "sn").iterdir()) == \
        sorted([*(f"draw_{n:03d}" for n in range(DRAWS)), f"draw_{best:03d}_seed_1"])


def test_a_diverging_draw_is_kept_as_diverged(tmp_path, cache):
    # a method added on the command line (its runs accept the added study key) at an absurd learning rate, its own
    # setting (draw 0): its critic's loss is nan at the first check
    result = run_study(tmp_path, "study.n_draws=1", "study.seeds=[]", "~study.methods.sn", "~study.methods.gp",
                       "~study.space", "+study.methods.huge={overrides: ['norm=none', 'loss=wgan', 'optim.lr_g=1e10']}",
                       cache=cache)
    assert result.returncode == 0, result.stderr[-3000:]
    (draw,) = results(tmp_path, "digits/huge")
    assert draw.state == TrialState.COMPLETE and draw.value == math.inf
    assert "huge/draw_000 diverged: Training diverged at generator step 4" in result.stdout + result.stderr
    assert "huge: 1 of 1 draw, 1 diverged" in result.stdout + result.stderr


def test_two_runs_at_a_time_through_the_submitit_local_launcher_share_one_storage_without_a_duplicate(
        uninterrupted, tmp_path, cache):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="hydra-submitit-launcher is not installed")
    # one method's two draws, launched together: two processes writing to one storage at once
    result = run_study(tmp_path, "hydra/launcher=local", "hydra.sweeper.batch=2", "study.n_draws=2", "study.seeds=[]",
                       "~study.methods.gp", cache=cache)
    assert result.returncode == 0, result.stderr[-3000:]
    whole, _ = uninterrupted
    draws = results(tmp_path, "digits/sn")
    assert [(t.number, t.state) for t in draws] == [(0, TrialState.COMPLETE), (1, TrialState.COMPLETE)]
    assert [t.params for t in draws] == [t.params for t in results(whole, "digits/sn")][:2]  # whatever the launcher
    for number in (0, 1):  # each run once: one session in its record
        record = json.loads((tmp_path / "sn" / f"draw_{number:03d}" / "run.json").read_text())
        assert len(record["sessions"]) == 1 and record["status"] == "finished"


# one refusal from each stage before the first run (the sweeper's settings, the study preset's methods, the command
# line); the study's own sentences for every bad space and method are tested in-process (test_study_space.py,
# test_study_preset.py)
@pytest.mark.parametrize("overrides, sentence", [
    (["hydra.sweeper.batch=0"], "error: hydra.sweeper.batch=0 must be a positive number of runs launched together."),
    (["study.methods.gp.overrides=['norm=gradient_penalty']"],
     "error: study.methods.gp.overrides ['norm=gradient_penalty'] do not compose with the study's base: "
     "norm='gradient_penalty' is not an option of norm"),
    (["norm=sn,wn"], "error: norm=sn,wn lists several values, but a study draws its runs' settings itself"),
])
def test_bad_study_input_is_refused_in_one_sentence_before_any_run(tmp_path, cache, overrides, sentence):
    result = run_study(tmp_path / "study", *overrides, cache=cache)
    assert result.returncode == 2 and result.stderr.startswith(sentence), result.stderr[-3000:]
    assert len(result.stderr.strip().splitlines()) == 1
    assert not any(path.is_dir() for path in (tmp_path / "study").glob("*/draw_*"))


def test_a_study_without_multirun_says_to_add_it(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sngan_repro.train", "study=digits"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: study=digits is a study of many runs: add -m (python -m sngan_repro.train "
                                     "-m study=digits).")
    assert not any(tmp_path.iterdir())  # the run folder Hydra made for it is gone


def test_train_help_names_the_study_presets():
    result = subprocess.run([sys.executable, "-m", "sngan_repro.train", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert "study: digits, kurach2019, lucic2018" in result.stdout
    assert "python -m sngan_repro.train -m study=digits" in result.stdout

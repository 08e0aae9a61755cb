"""What a user sees: the quickstart through the real command line prints a banner, one progress bar and a summary
whose paths exist and whose commands work, with no third-party noise on stderr unless verbose=true; the README's
pictures come from such a run's own files through scripts/readme_figures.py."""

import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parent.parent
QUICK = ["experiment=quickstart", "train.steps=4", "train.log_every=2", "train.sample_every=2",
         "metrics.measures.digits.every=2", "metrics.measures.digits.fid.samples=500",
         "metrics.measures.digits.inception_score.samples=500"]
# what the libraries print on their own at start: device lines, advertisements, their deprecation warnings
NOISE = re.compile(r"GPU available|TPU available|Tip:|litlogger|litmodels|DeprecationWarning|FutureWarning|"
                   r"deprecated|Trainable params")
BAR = re.compile(r"^([^:\r\n]+):\s+\d+%\|")  # a tqdm line: "<description>:  50%|█████ ..."


def _start(tmp_path, name: str, overrides: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sngan_repro.train", *overrides,
                             f"hydra.run.dir={tmp_path / name}"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> tuple[str, str]:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return out, err


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    """The quickstart for 4 updates, and beside it one update with verbose=true (the processes side by side)."""
    tmp_path = tmp_path_factory.mktemp("console")
    quiet = _start(tmp_path, "run", QUICK)
    verbose = _start(tmp_path, "verbose", ["experiment=quickstart", "train.steps=1", "metrics=none", "verbose=true"])
    out, err = _finish(quiet)
    return tmp_path, out, err, _finish(verbose)


def _summary_paths(out: str) -> dict[str, Path]:
    return {name: Path(path) for name, path in re.findall(r"^  (last checkpoint|sample grids|TensorBoard) +(\S+)$",
                                                         out, flags=re.MULTILINE)}


def test_banner_one_bar_and_summary_and_nothing_else(quickstart):
    tmp_path, out, err, _ = quickstart
    run = tmp_path / "run"
    banner, rest = out.split("\n\n", 1) if "\n\n" in out else (out, "")
    assert banner.splitlines()[0] == ("sngan-repro: experiment=quickstart dataset=digits arch=sngan_cnn norm=sn "
                                      "loss=hinge optim=C seed=0")
    assert f"  run directory   {run}" in banner and "training        4 generator updates" in banner
    assert "global batch 64 real, 64 generated" in banner and "device          cpu" in banner
    bars = {match.group(1) for line in re.split(r"[\r\n]", out) if (match := BAR.match(line))}
    assert bars == {"G steps"}  # one bar: no "Training" or "Epoch N" bars before ours
    assert "digits_fid=" in out  # the bar shows the latest quality metric
    summary = out[out.index("sngan-repro: done, 4 of 4 generator updates"):]
    fid = float(re.search(r"^  digits_fid/500_vs_train1797 +(\S+)$", summary, flags=re.MULTILINE).group(1))
    logged = EventAccumulator(str(run / "tensorboard")).Reload().Scalars("digits_fid/500_vs_train1797")
    assert fid == pytest.approx(logged[-1].value, rel=1e-5) and logged[-1].step == 4
    # the record keeps the last values too (a sweep's end lists them)
    assert json.loads((run / "run.json").read_text())["final_metrics"]["digits_fid/500_vs_train1797"] == \
        pytest.approx(fid, rel=1e-5)
    assert not NOISE.search(err), err  # stderr: nothing from the libraries
    assert err.strip() == ""


def test_the_summarys_paths_exist_and_its_commands_work(quickstart):
    tmp_path, out, _, _ = quickstart
    run = tmp_path / "run"
    paths = _summary_paths(out)
    assert paths == {"last checkpoint": run / "checkpoints" / "last.ckpt", "sample grids": run / "samples",
                     "TensorBoard": run / "tensorboard"}
    assert all(path.exists() for path in paths.values())
    commands = [shlex.split(line.strip()) for line in out[out.index("next: "):].splitlines()[1:]]
    python = sys.executable  # the interpreter that ran the training, named as the user would call it
    assert [command[:3] for command in commands] == [
        [str(Path(python).with_name("tensorboard")), "--logdir", str(run / "tensorboard")],
        [python, "-m", "sngan_repro.evaluate"], [python, "-m", "sngan_repro.train"]]
    assert commands[2][-2:] == [f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "train.steps=8"]
    result = subprocess.run(commands[1], cwd=tmp_path, capture_output=True, text=True, timeout=600)  # as printed
    assert result.returncode == 0, result.stderr[-3000:]
    written = json.loads((run / "evaluation" / "last_digits.json").read_text())
    assert written["g_step"] == 4 and "digits_fid/500_vs_train1797" in written["results"]


@pytest.mark.parametrize("verbose", [False, True])
def test_the_python_api_has_the_command_lines_console(tmp_path, verbose):
    """sngan_repro.train.run(cfg) prints what the command does: banner and summary, no library start-up lines or
    deprecation warnings unless verbose=true."""
    code = ("from sngan_repro import compose\nfrom sngan_repro.train import run\n"
            f"run(compose(['experiment=quickstart', 'train.steps=1', 'metrics=none', 'verbose={str(verbose).lower()}',"
            f" 'trainer.enable_progress_bar=false', 'paths.output_dir={tmp_path}']))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert out.startswith("sngan-repro: experiment=quickstart") and "sngan-repro: done, 1 of 1" in out
    if verbose:
        assert "GPU available" in result.stderr
    else:
        assert not NOISE.search(result.stdout + result.stderr), result.stdout + result.stderr
        assert result.stderr.strip() == ""


def test_verbose_brings_the_libraries_messages_back(quickstart):
    *_, (out, err) = quickstart
    assert "GPU available" in err and "Trainable params" in out + err


def test_readme_figures_come_from_the_runs_own_files(quickstart, tmp_path):
    run = quickstart[0] / "run"
    spec = importlib.util.spec_from_file_location("readme_figures", ROOT / "scripts" / "readme_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([str(run), "--output", str(tmp_path)]) == 0
    numbers = json.loads((tmp_path / "quickstart_figures.json").read_text())
    assert numbers["sample_steps"] == [0, 2, 4]
    logged = EventAccumulator(str(run / "tensorboard")).Reload().Scalars("digits_fid/500_vs_train1797")
    assert numbers["fid"] == [[event.step, pytest.approx(event.value)] for event in logged]
    from PIL import Image

    strip, grid = Image.open(tmp_path / "quickstart_samples.png"), Image.open(run / "samples" / "g_step_0000004.png")
    assert strip.width == 3 * grid.width + 2 * 6  # the three grids side by side
    assert Image.open(tmp_path / "quickstart_fid.png").width > 0


def test_only_library_warnings_and_logs_are_quieted():
    """Deprecation warnings attributed to a library module are filtered, ours (and other categories) are not;
    Lightning's INFO lines go, its warnings stay."""
    import logging
    import warnings

    from sngan_repro.console import LIBRARY_LOGGERS, quiet_libraries

    levels = {name: logging.getLogger(name).level for name in LIBRARY_LOGGERS}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_libraries(verbose=False)
            for module, category in [("pytorch_lightning.utilities._pytree", FutureWarning),
                                     ("torch.utils.data", DeprecationWarning), ("sngan_repro.module", FutureWarning),
                                     ("torch.nn", UserWarning)]:
                warnings.warn_explicit(f"from {module}", category, "file.py", 1, module=module)
        assert [str(w.message) for w in caught] == ["from sngan_repro.module", "from torch.nn"]
        lightning = logging.getLogger("pytorch_lightning")
        assert not lightning.isEnabledFor(logging.INFO) and lightning.isEnabledFor(logging.WARNING)
    finally:  # this process's other tests keep Lightning's levels
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)

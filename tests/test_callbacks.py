"""The seams of issue 9: metrics and callbacks as configured objects, one schedule for every periodic callback.

- a new metric is one class plus a preset entry: it reaches TensorBoard in training and the evaluate JSON;
- a callback is added from the real command line with ``+callbacks.<name>={_target_: ...}``;
- every periodic callback acts at step 0, every k generator updates and after the last one.
"""

import json
import subprocess
import sys

import pytest
import torch
from conftest import tiny_run_overrides
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sngan_repro import compose
from sngan_repro.errors import ConfigError
from sngan_repro.evaluate import evaluate
from sngan_repro.metrics import Metric
from sngan_repro.train import instantiate_callbacks, run

SAMPLES = 32


class MeanPixel(Metric):
    """A toy metric: the mean pixel value of ``SAMPLES`` samples from the metrics noise stream."""

    def names(self) -> list[str]:
        return [f"toy/mean_pixel_{SAMPLES}"]

    def protocols(self) -> dict[str, str]:
        return {f"toy/mean_pixel_{SAMPLES}": f"mean pixel value of {SAMPLES} samples, generator in eval mode"}

    def compute(self, gan) -> dict[str, float]:
        return {f"toy/mean_pixel_{SAMPLES}": gan.generate(gan.latent_draw(SAMPLES, "metrics", 0)).mean().item()}


TOY = f"+metrics.measures.toy={{_target_: {__name__}.MeanPixel, every: 2}}"


class Unpreparable(MeanPixel):
    def prepare(self, setup) -> None:
        raise AssertionError("an evaluation-only metric (every: 0) was prepared in training")


def test_an_evaluation_only_metric_is_neither_prepared_nor_measured_in_training(tmp_path):
    module = run(compose(tiny_run_overrides(tmp_path / "run", 2, "logger=none", "metrics.required=true",
                                            f"+metrics.measures.toy={{_target_: {__name__}.Unpreparable, every: 0}}")))
    assert f"toy/mean_pixel_{SAMPLES}" not in module.trainer.callback_metrics


def _scalars(folder) -> EventAccumulator:
    events = EventAccumulator(str(folder / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def test_a_new_metric_is_one_class_and_one_preset_entry(tmp_path):
    module = run(compose(tiny_run_overrides(tmp_path / "run", 5, TOY, "logger=tensorboard")))
    expected = module.generate(module.latent_draw(SAMPLES, "metrics", 0)).mean().item()  # the final generator
    logged = {event.step: event.value for event in _scalars(tmp_path / "run").Scalars("toy/mean_pixel_32")}
    assert list(logged) == [0, 2, 4, 5] and logged[5] == pytest.approx(expected, rel=1e-6)
    assert len(set(logged.values())) == 4  # measured anew each time, not one value repeated

    document = evaluate(compose([f"ckpt={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}", "metrics=none", TOY,
                                 f"output={tmp_path / 'toy.json'}"], config_name="evaluate"))
    assert document["results"] == {"toy/mean_pixel_32": {
        "value": pytest.approx(expected, rel=1e-6),
        "protocol": f"mean pixel value of {SAMPLES} samples, generator in eval mode"}}
    assert json.loads((tmp_path / "toy.json").read_text())["results"]["toy/mean_pixel_32"]["value"] == \
        pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("override", "message"), [
    ("+metrics.measures.toy={every: 2}", r"^metrics.measures.toy has no _target_; give the class of a sngan_repro "
                                         r"Metric\.$"),
    ("+metrics.measures.toy={_target_: torch.nn.Identity}", r"^metrics.measures.toy._target_='torch.nn.Identity' is "
                                                            r"not a sngan_repro Metric\.$"),
    (f"+metrics.measures.toy={{_target_: {__name__}.MeanPixel, every: -1}}",
     r"^metrics.measures.toy.every=-1 must be an integer >= 0\.$"),
    (("metrics=digits", "metrics.measures.digits.fid.samples=0"), r"^metrics.measures.digits.fid.samples=0 must be a "
                                                             r"positive integer\.$"),
    (("metrics=digits", "metrics.measures.digits.inception_score.splits=3000"),
     r"^metrics.measures.digits.inception_score.splits=3000 exceeds its 2000 samples\.$"),
    (("metrics=digits", "metrics.monitor=fid/5k"),
     r"^metrics.monitor='fid/5k' is not logged during this run; accepted: digits_fid/2k_vs_train1797, "
     r"digits_is/2k_1split, digits_is/2k_1split_std, digits_kid/2k_vs_train1797_10x1k_poly3, "
     r"digits_kid/2k_vs_train1797_10x1k_poly3_std, digits_precision/2k_vs_train1797_k3, "
     r"digits_recall/2k_vs_train1797_k3\.$"),
    (("metrics=digits", "metrics.measures.digits.kid.subset_size=1900"),
     r"^metrics.measures.digits.kid.subset_size=1900 exceeds kid.samples=2000 or kid.real=1797; subsets are drawn "
     r"without replacement from each side\.$"),
    ("metrics=xiang_running", r"^metrics.measures.reconstruction needs 200 held-out images but dataset.heldout=0"),
    ("+callbacks.extra={_target_: torch.nn.Identity}", r"^callbacks.extra._target_='torch.nn.Identity' is not a "
                                                       r"Lightning Callback\.$"),
    ("+callbacks.extra={every: 3}", r"^callbacks.extra has no _target_"),
])
def test_bad_metric_and_callback_entries_are_refused_with_one_sentence(tmp_path, override, message):
    overrides = override if isinstance(override, tuple) else (override,)
    with pytest.raises(ConfigError, match=message):
        run(compose(tiny_run_overrides(tmp_path, 3, *overrides)))
    assert not (tmp_path / "checkpoints").exists()


def test_callbacks_are_given_their_settings_when_built(tmp_path):
    """Every callback gets what it reads as constructor arguments from conf/callbacks (interpolated from train.*,
    dataset.*, metrics.*), so a setting renamed on either side fails before training, naming it, not at run time."""
    overrides = tiny_run_overrides(tmp_path, 7, "train.sample_every=3", "train.diagnostics_every=2",
                                   "train.checkpoint_every=4", "metrics=digits", "trainer.enable_progress_bar=true")
    built = {type(callback).__name__: callback for callback in instantiate_callbacks(compose(overrides))}
    assert {name: getattr(built[name], "steps", None) for name in built} == {
        "GeneratorStepCheckpoint": 7, "BestCheckpoint": 7, "FixedLatentSamples": 7, "MetricsCallback": 7,
        "SpectralDiagnostics": 7, "HParamsSummary": None, "GeneratorStepProgressBar": 7, "RunRecord": 7,
        "Preemption": None}
    assert (built["FixedLatentSamples"].every_n_g_steps, built["SpectralDiagnostics"].every_n_g_steps,
            built["GeneratorStepCheckpoint"].every_n_g_steps) == (3, 2, 4)
    assert (built["SpectralDiagnostics"].channels, built["SpectralDiagnostics"].image_size) == (1, 16)
    assert list(built["MetricsCallback"].metrics) == ["digits"] and built["MetricsCallback"].required
    assert built["HParamsSummary"].hparams["norm"] == "sn" and built["HParamsSummary"].hparams["steps"] == 7
    assert built["RunRecord"].choices["dataset"] == "digits" and built["RunRecord"].batch_size == 16

    with pytest.raises(ConfigError, match=r"FixedLatentSamples.*steps"):  # a callback missing a setting
        instantiate_callbacks(compose([*overrides, "~callbacks.samples.steps"]))
    with pytest.raises(ConfigError, match=r"train\.sample_every"):  # a setting a callback reads, renamed
        compose([*overrides, "~train.sample_every", "+train.sample_period=3"])


@pytest.mark.slow
def test_a_callback_is_added_and_removed_from_the_command_line(tmp_path):
    """Through the real command line: a second sample-grid callback into another folder; the default one off."""
    extra = ("+callbacks.every_other={_target_: sngan_repro.callbacks.FixedLatentSamples, every_n_g_steps: 2, "
             f"steps: ${{train.steps}}, directory: {tmp_path / 'extra'}}}")
    command = [sys.executable, "-m", "sngan_repro.train",
               *tiny_run_overrides(tmp_path / "run", 5, extra, "callbacks.samples=null", "logger=none")]
    # (in tmp_path: Hydra's own folder for the job, outputs/<time>, lands there)
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(path.name for path in (tmp_path / "extra").glob("*.png")) == [
        "g_step_0000000.png", "g_step_0000002.png", "g_step_0000004.png", "g_step_0000005.png"]
    assert not (tmp_path / "run" / "samples").exists()


@pytest.mark.slow
def test_every_periodic_callback_acts_at_the_start_every_k_updates_and_after_the_last(tmp_path):
    """train.steps=7 with every periodic callback at period 3: all act at 0, 3, 6 and 7 (7 is not a multiple)."""
    digits = "metrics.measures.digits"
    run(compose(tiny_run_overrides(
        tmp_path, 7, "metrics=digits", f"{digits}.every=3", f"{digits}.inception_score.samples=100",
        f"{digits}.fid.samples=100", f"{digits}.fid.real=200", f"{digits}.batch_size=100",
        f"paths.cache_dir={tmp_path / 'cache'}", "dataset.heldout=20",
        "+metrics.measures.reconstruction={_target_: sngan_repro.metrics.Reconstruction, every: 3, images: 4, "
        "steps: 2}", "train.sample_every=3", "train.diagnostics_every=3", "train.checkpoint_every=3",
        "logger=tensorboard")))
    events = _scalars(tmp_path)
    scalars = ["digits_fid/100_vs_train200", "digits_is/100_1split", "reconstruction/running_4img_2steps",
               "spectral/features.0/sn_estimate"]
    for tag in scalars:
        assert [event.step for event in events.Scalars(tag)] == [0, 3, 6, 7], tag
    for tag in ("samples/fixed_z", "reconstruction/heldout_vs_reconstructed"):
        assert [event.step for event in events.Images(tag)] == [0, 3, 6, 7], tag
    assert sorted(path.name for path in (tmp_path / "samples").glob("*.png")) == [
        f"g_step_000000{step}.png" for step in (0, 3, 6, 7)]
    assert sorted(path.name for path in (tmp_path / "checkpoints").glob("g_step_*.ckpt")) == [
        f"g_step_000000{step}.ckpt" for step in (3, 6, 7)]
    final = torch.load(tmp_path / "checkpoints" / "g_step_0000007.ckpt", map_location="cpu", weights_only=False)
    assert final["gan_counters"]["g_step"] == 7

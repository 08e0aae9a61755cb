"""End-to-end CPU runs: training with each normalization, n_dis, TensorBoard output, determinism
and exact resume."""

import math

import pytest
import torch
from conftest import digits_pixel_statistics
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sngan_repro.train import run


def _event_file(output_dir) -> EventAccumulator:
    events = EventAccumulator(str(output_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return events


def _checkpoint(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.parametrize("norm", ["sn", "none"])
def test_twenty_generator_steps_train_and_log(tiny_cfg, tmp_path, norm):
    module = run(tiny_cfg(f"norm={norm}", steps=20))
    assert (module.g_step, module.d_step) == (20, 20)
    assert all(math.isfinite(v) for v in module.last_metrics.values())

    events = _event_file(tmp_path)
    tags = events.Tags()
    for tag in ("loss/d", "loss/g", "d_out/real", "d_out/fake", "lr/g", "lr/d"):
        assert [e.step for e in events.Scalars(tag)] == [5, 10, 15, 20], tag
    sigma_tags = [t for t in tags["scalars"] if t.startswith("norm_scale/")]
    assert len(sigma_tags) == (8 if norm == "sn" else 0)  # 7 convs + the dense layer
    assert [e.step for e in events.Images("samples/fixed_z")] == [0, 10, 20]

    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["g_step_0000010.ckpt", "g_step_0000020.ckpt", "last.ckpt"]
    written = OmegaConf.load(tmp_path / "config.yaml")  # resolved: the callbacks' settings are the run's
    assert written.train.steps == written.callbacks.checkpoint.steps == 20 and written.norm == module.cfg.norm


def _count_calls(monkeypatch, cls, name) -> list:
    """Record every call of ``cls.name`` (the losses are computed once per update of their network)."""
    original, calls = getattr(cls, name), []

    def counted(self, *args):
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(cls, name, counted)
    return calls


def test_n_dis_discriminator_updates_per_generator_update(tiny_cfg, monkeypatch):
    from sngan_repro.losses import HingeLoss

    d_calls, g_calls = _count_calls(monkeypatch, HingeLoss, "discriminator"), _count_calls(monkeypatch, HingeLoss,
                                                                                              "generator")
    module = run(tiny_cfg("optim.n_dis=3", "logger=none", steps=4))
    assert (len(d_calls), len(g_calls)) == (12, 4) == (module.d_step, module.g_step)


def test_n_dis_boost_schedule(tiny_cfg):
    """Mullery & Whelan: 50 critic steps for the first 25 generator steps and every 500th (here scaled down)."""
    module = run(tiny_cfg("optim.n_dis=1", "optim.n_dis_boost={n_dis: 4, first: 2, every: 5}", "logger=none", steps=6))
    # generator updates 0, 1 (first two) and 5 (every 5th) follow 4 critic updates; 2, 3, 4 follow 1
    assert module.d_step == 4 + 4 + 1 + 1 + 1 + 4
    assert [module.n_dis(step) for step in range(11)] == [4, 4, 1, 1, 1, 4, 1, 1, 1, 1, 4]


def test_linear_decay_reaches_zero_at_the_last_step(tiny_cfg):
    module = run(tiny_cfg("optim=resnet", "optim.n_dis=1", steps=10))
    assert module.last_metrics["lr/g"] == 0.0 and module.last_metrics["lr/d"] == 0.0


def _weights(module) -> dict:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_seeded_runs_are_reproducible(tiny_cfg, tmp_path):
    first = _weights(run(tiny_cfg("logger=none", steps=6, output_dir=tmp_path / "a")))
    second = _weights(run(tiny_cfg("logger=none", steps=6, output_dir=tmp_path / "b")))
    other = _weights(run(tiny_cfg("logger=none", "seed=1", steps=6, output_dir=tmp_path / "c")))
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


RESUMED = {
    "sn": ("norm=sn",),
    "san_projection": ("norm=san", "norm.mode=projection"),
    "san_reparametrization": ("norm=san", "norm.mode=reparametrization", "norm.update_every=3"),
    "gp": ("norm=gp", "loss=wgan"),
    "bn_clip_frozen": ("arch.head=bn_clip", "arch.head_frozen=true"),
    "xiang_wn": ("arch=xiang_dcgan", "arch.variant=wn"),
    # BEGAN's k_t is training state (a buffer of the loss); gamma and lambda_k large enough that it moves
    "began": ("arch=began", "loss=began", "norm=none", "loss.gamma=2.0", "loss.lambda_k=0.05"),
    "ebgan": ("arch=ebgan", "loss=ebgan", "norm=none"),  # its critic's BN statistics, G's pulling-away term
    # the plateau decay's state (its lowest M_global, the decayed rates): checked every 4 updates, across the resume
    "began_plateau": ("arch=began", "loss=began", "norm=none", "loss.gamma=2.0", "loss.lambda_k=0.05",
                      "optim.lr_decay=plateau", "optim.plateau={every: 4, factor: 0.5, min_lr: 0}"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(RESUMED))
def test_resume_continues_the_same_run(tiny_cfg, tmp_path, case):
    """2N generator steps in one go == N steps, then resume from the checkpoint for N more: every weight, buffer
    (SN's u and v, SAN's sigma, BN statistics) and Adam moment bit for bit."""
    n, extra = 6, ("optim.n_dis=2", "logger=none", "train.checkpoint_every=0", *RESUMED[case])
    straight = run(tiny_cfg(*extra, steps=2 * n, output_dir=tmp_path / "straight"))
    run(tiny_cfg(*extra, steps=n, output_dir=tmp_path / "first_half"))
    checkpoint = tmp_path / "first_half" / "checkpoints" / "last.ckpt"
    resumed = run(tiny_cfg(*extra, f"ckpt_path={checkpoint}", steps=2 * n, output_dir=tmp_path / "second_half"))

    assert (resumed.g_step, resumed.d_step) == (straight.g_step, straight.d_step) == (2 * n, 4 * n)
    if case.startswith("began"):
        assert 0 < resumed.loss.k.item() < 1
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:  # a module's extra state (SAN's pending refresh)
            assert a[key] == b[key], key
    final_a = _checkpoint(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    final_b = _checkpoint(tmp_path / "second_half" / "checkpoints" / "last.ckpt")
    assert final_a["lr_schedulers"] == final_b["lr_schedulers"]
    for state_a, state_b in zip(final_a["optimizer_states"], final_b["optimizer_states"]):
        assert [g["lr"] for g in state_a["param_groups"]] == [g["lr"] for g in state_b["param_groups"]]
        assert state_a["state"].keys() == state_b["state"].keys()
        for param, moments in state_a["state"].items():
            for name, value in moments.items():
                assert torch.equal(value, state_b["state"][param][name]), (param, name)


def test_a_frozen_head_does_not_move_on_resume(tiny_cfg, tmp_path):
    """arch.head_frozen holds when the data initialization is skipped (a resumed run): gamma and beta stay at the
    data's std and mean and are not optimizer parameters."""
    from sngan_repro.nn import OutputHead

    extra = ("arch.head=bn_clip", "arch.head_frozen=true", "logger=none", "train.checkpoint_every=0")
    run(tiny_cfg(*extra, steps=3, output_dir=tmp_path / "first"))
    resumed = run(tiny_cfg(*extra, f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}", steps=6,
                           output_dir=tmp_path / "resumed"))
    head = next(m for m in resumed.generator.modules() if isinstance(m, OutputHead))
    mean, std = digits_pixel_statistics(16)  # the tiny run's digits at 16 px, computed independently
    assert head.norm.bias.item() == pytest.approx(mean.item(), abs=1e-5)
    assert head.norm.weight.item() == pytest.approx(std.item(), abs=1e-5)
    optimized = {id(p) for group in resumed.trainer.optimizers[0].param_groups for p in group["params"]}
    assert id(head.norm.weight) not in optimized and id(head.norm.bias) not in optimized
    assert resumed.g_step == 6


def test_resuming_a_finished_run_does_not_train_further(tiny_cfg, tmp_path, monkeypatch):
    from sngan_repro.losses import HingeLoss

    done = _weights(run(tiny_cfg("logger=none", steps=4, output_dir=tmp_path / "done")))
    checkpoint = tmp_path / "done" / "checkpoints" / "last.ckpt"
    d_calls = _count_calls(monkeypatch, HingeLoss, "discriminator")
    module = run(tiny_cfg("logger=none", f"ckpt_path={checkpoint}", steps=4, output_dir=tmp_path / "again"))
    assert d_calls == [] and (module.g_step, module.d_step) == (4, 4)
    assert all(torch.equal(value, done[name]) for name, value in module.state_dict().items()
               if isinstance(value, torch.Tensor))


@pytest.mark.slow
def test_a_failing_job_does_not_stop_a_sweep(tmp_path):
    import subprocess
    import sys

    from conftest import tiny_run_overrides

    overrides = [o for o in tiny_run_overrides(tmp_path) if not o.startswith(("paths.output_dir", "train.steps"))]
    result = subprocess.run(
        [sys.executable, "-m", "sngan_repro.train", "-m", "train.steps=0,3", "logger=none", *overrides,
         f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        capture_output=True, text=True, timeout=300,
    )
    assert "error: train.steps=0 must be a positive number" in result.stderr
    assert (tmp_path / "sweep" / "0" / "error.txt").is_file()
    assert (tmp_path / "sweep" / "1" / "checkpoints" / "last.ckpt").is_file()
    # at the end, one line per run: its overrides and how it ended
    end = result.stdout[result.stdout.index(f"sngan-repro: sweep of 2 runs in {tmp_path / 'sweep'}"):].splitlines()
    assert end[1].startswith("  0 [train.steps=0 logger=none ") and end[1].endswith(
        "]: failed: ConfigError: train.steps=0 must be a positive number of generator updates.")
    assert end[2].startswith("  1 [train.steps=3 logger=none ") and end[2].endswith("]: finished at 3 updates")
    # and the failed run named in one sentence, and exit code 2 (it failed other than by diverging)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: 1 of the sweep's 2 runs failed (0 in {tmp_path / 'sweep'}; 1 not by diverging; first: ConfigError: "
        f"train.steps=0 must be a positive number of generator updates); each run's error.txt says why, and the "
        f"others' results stand.")


@pytest.mark.parametrize("failures, code", [(["TrainingDivergedError"], 0),
                                            (["TrainingDivergedError", "DatasetUnavailableError"], 2)])
def test_a_sweep_ends_naming_its_failed_runs_and_fails_unless_they_diverged(tmp_path, capsys, failures, code):
    """Diverging is a result of a sweep (settings that fail are what Miyato et al.'s Sec. 4.1 looks for); a run
    that could not do what it was asked fails the sweep. Error files older than the sweep are an earlier one's."""
    import os

    from omegaconf import OmegaConf

    from sngan_repro.sweep_outcome import SweepOutcome

    outcome = SweepOutcome()
    for job in range(4):
        (tmp_path / str(job) / ".hydra").mkdir(parents=True)
    stale = tmp_path / "3" / "error.txt"
    stale.write_text("ConfigError: an earlier sweep's.\n")
    os.utime(stale, (0, 0))
    outcome.on_multirun_start(OmegaConf.create())
    for job, kind in enumerate(failures):
        (tmp_path / str(job) / "error.txt").write_text(f"{kind}: what happened in run {job}.\n")
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    if code:
        with pytest.raises(SystemExit) as exited:
            outcome.on_multirun_end(config)
        assert exited.value.code == code
    else:
        outcome.on_multirun_end(config)
    first = "DatasetUnavailableError: what happened in run 1" if code else \
        "TrainingDivergedError: what happened in run 0"
    assert capsys.readouterr().err == (
        f"{'error' if code else 'note'}: {len(failures)} of the sweep's 4 runs failed "
        f"({', '.join(map(str, range(len(failures))))} in {tmp_path}; {code // 2} not by diverging; first: {first}); "
        f"each run's error.txt says why, and the others' results stand.\n")


def test_checkpoint_rebuilds_its_module(tiny_cfg, tmp_path):
    from sngan_repro.module import GAN

    trained = run(tiny_cfg("logger=none", steps=4))
    loaded = GAN.load_from_checkpoint(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu")
    assert loaded.g_step == 4
    torch.testing.assert_close(loaded.generate(trained.fixed_z), trained.generate(trained.fixed_z))


def test_critic_gap_is_logged_at_every_generator_step_and_the_penalty_apart(tiny_cfg, tmp_path):
    """Mullery & Whelan plot the critic loss (a Wasserstein estimate) per generator iteration: d_out/real_minus_fake
    at every generator step (written at the logging steps, no per-step host sync), and the penalty on its own."""
    run(tiny_cfg("norm=gp", "loss=wgan", "train.log_every=5", steps=12))
    events = _event_file(tmp_path)
    gap = {e.step: e.value for e in events.Scalars("d_out/real_minus_fake")}
    assert sorted(gap) == list(range(1, 13))
    scalars = {tag: {e.step: e.value for e in events.Scalars(tag)}
               for tag in ("d_out/real", "d_out/fake", "loss/d", "loss/d_penalty")}
    for step in (5, 10, 12):  # where the means of D's outputs are logged too
        assert gap[step] == pytest.approx(scalars["d_out/real"][step] - scalars["d_out/fake"][step], abs=1e-5)
        # WGAN-GP: loss/d = E[D(G(z))] - E[D(x)] + penalty
        assert scalars["loss/d"][step] - scalars["loss/d_penalty"][step] == pytest.approx(-gap[step], abs=1e-5)
        assert scalars["loss/d_penalty"][step] > 0


def test_hparams_record_every_normalization_setting(tiny_cfg, tmp_path):
    """SAN's mode (and every other norm.* setting) is recorded with the run's results."""
    run(tiny_cfg("norm=san", "norm.mode=reparametrization", steps=2))
    info = _event_file(tmp_path).PluginTagToContent("hparams")["_hparams_/session_start_info"]
    for setting in (b"norm.mode", b"reparametrization", b"norm.update_every", b"norm.dense", b"gen_norm"):
        assert setting in info, setting


@pytest.mark.parametrize("distribution", ["normal", "uniform", "uniform_0_1"])
def test_latent_codes_follow_their_prior(distribution):
    """arch.latent_distribution: N(0, I), U(-1, 1) (DCGAN's) or U(0, 1) (the report's infoGAN-style code), by a
    Kolmogorov-Smirnov test of 32,000 seeded draws (the same draws every run): theirs fits, the others do not."""
    from scipy import stats

    from sngan_repro.noise import NoiseStreams

    priors = {"normal": stats.norm(), "uniform": stats.uniform(-1, 2), "uniform_0_1": stats.uniform(0, 1)}
    codes = NoiseStreams(0, 64, distribution).latent(500, "generator", 0, torch.device("cpu"), torch.float32)
    draws = codes.flatten().double().numpy()
    p_values = {name: stats.kstest(draws, prior.cdf).pvalue for name, prior in priors.items()}
    assert p_values.pop(distribution) > 0.01 and max(p_values.values()) < 1e-6

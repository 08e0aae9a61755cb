"""Data-parallel training (sngan_repro/distributed.py): two CPU processes (gloo) against one process on the same
global batch."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import tiny_run_overrides
from helpers.combinations import FAMILIES, NORMS, REFUSED, combination_overrides
from helpers.ddp import assert_ranks_equal, recorder_override, run_processes
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sngan_repro import compose
from sngan_repro.distributed import rank_share
from sngan_repro.errors import ConfigError
from sngan_repro.evaluate import evaluate
from sngan_repro.module import GAN
from sngan_repro.train import run

# float64 (trainer.precision=64-true) so that the tolerance can be derived. The two runs differ only in the order of
# floating-point sums: gradients averaged over two half-batches instead of summed over one batch, and batch
# statistics combined from two halves. A sum of n <= 10^4 terms of size <= 1 is off by at most n * 2^-53 ~ 1e-12.
# Adam (lr 2e-4 here, eps 1e-8) turns a gradient difference d into a step difference of at most lr * d / eps, so
# <= 2e-8 per update even for a gradient that is zero but for rounding (a conv bias before batch normalization),
# <= 1.2e-7 over the 6 updates, below 1e-6. A real discrepancy (one sample, noise draw or statistic that differs)
# changes a gradient by a few percent and an update by ~1e-5, and Adam's first update moves every weight by ~lr.
TOLERANCE = 1e-6


def _run(tmp_path, name: str, *extra: str) -> list[dict]:
    overrides = tiny_run_overrides(tmp_path / name, 3, "optim.n_dis=2", "trainer.precision=64-true",
                                   "train.diagnostics_every=0", "train.sample_every=100", "train.checkpoint_every=0",
                                   "logger=none", recorder_override(tmp_path / name / "states"), *extra)
    world = 2 if "trainer=ddp" in extra else 1
    if world == 1:
        run(compose(overrides))
    else:  # through a script: Lightning's launcher runs it again for rank 1
        run_processes(tmp_path, overrides, tmp_path / name / "done")
    return [torch.load(tmp_path / name / "states" / f"states{rank}.pt") for rank in range(world)]


# BEGAN: k_t (a buffer of the loss) is moved by the global batch's mean energies, so both ranks keep the one value;
# EBGAN: the pulling-away term is over pairs of the global batch's generated images, across ranks
# SN with Xiang & Li's frozen BN+clip generator head: its gain and shift are buffers, kept as buffers in SyncBatchNorm
METHODS = {"sn": ["norm=sn", "arch.head=bn_clip", "arch.head_frozen=true"], "san": ["norm=san"], "bn": ["norm=bn"],
           "gp": ["norm=gp"],
           "began": ["arch=began", "loss=began", "norm=none", "loss.gamma=2.0", "loss.lambda_k=0.05"],
           "ebgan": ["arch=ebgan", "loss=ebgan", "norm=none", "loss.pulling_away=10.0"]}


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(METHODS))
def test_two_ranks_stay_equal_and_compute_what_one_process_computes(tmp_path, method):
    """After every update (n_dis = 2, 3 generator updates, both networks' batch normalization synchronized): the two
    ranks hold bit-identical weights and buffers, and they equal a single process's within the tolerance."""
    ranks = _run(tmp_path, "ddp", *METHODS[method], "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2")
    (single,) = _run(tmp_path, "single", *METHODS[method])
    assert [(s["d_step"], s["g_step"]) for s in single] == [(1, 0), (2, 1), (3, 1), (4, 2), (5, 2), (6, 3)]
    assert_ranks_equal(*ranks)
    for rank0, alone in zip(ranks[0], single, strict=True):
        assert (rank0["d_step"], rank0["g_step"]) == (alone["d_step"], alone["g_step"])
        assert rank0["state"].keys() == alone["state"].keys()
        for name, value in rank0["state"].items():
            difference = (value.double() - alone["state"][name].double()).abs().max().item()
            assert difference <= TOLERANCE, f"{name} differs from one process by {difference} at {rank0['d_step']}"
    moved = max((single[-1]["state"][name].double() - single[0]["state"][name].double()).abs().max().item()
                for name in single[0]["state"])
    assert moved > 1e-5  # the runs trained: the comparison is not of untouched weights


def test_the_global_batch_must_split_evenly_over_the_ranks(tmp_path):
    cfg = compose(tiny_run_overrides(tmp_path, 3, "train.batch_size=18"))
    assert rank_share("train.batch_size", cfg.train.batch_size, 2) == 9
    with pytest.raises(ConfigError, match=r"train.batch_size=18 does not split evenly over the 4 ranks"):
        rank_share("train.batch_size", cfg.train.batch_size, 4)


@pytest.mark.slow
def test_metrics_under_ddp_are_those_of_one_process(tmp_path):
    """Digits IS/FID (250 samples in chunks of 100: rank 0 makes chunks 0 and 2, rank 1 chunk 1) and the
    reconstruction loss (7 held-out images: 4 on rank 0, 3 on rank 1) measured during a 2-rank run, logged once by
    rank 0, equal a single-process evaluation of the saved generator."""
    measures = ["metrics=digits", "metrics.measures.digits.every=3", "metrics.measures.digits.batch_size=100",
                "metrics.measures.digits.inception_score={samples: 250, splits: 2}",
                "metrics.measures.digits.fid={samples: 250, real: 300}",
                "+metrics.measures.reconstruction={_target_: sngan_repro.metrics.Reconstruction, every: 3, images: 7, "
                "steps: 5}"]
    overrides = tiny_run_overrides(tmp_path / "run", 3, *measures, "dataset.heldout=20", "logger=tensorboard",
                                   "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                                   "train.diagnostics_every=0")
    run_processes(tmp_path, overrides, tmp_path / "done")
    record, config = json.loads((tmp_path / "run" / "run.json").read_text()), (tmp_path / "run" / "config.yaml")
    assert record["world_size"] == 2 and record["batch"]["global"] == 16 and record["batch"]["per_rank"] == 8
    assert OmegaConf.load(config).train.batch_size_per_rank == 8 and OmegaConf.load(config).train.world_size == 2
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    names = ("digits_is/250_2splits", "digits_fid/250_vs_train300", "reconstruction/running_7img_5steps")
    logged = {name: [(e.step, e.value) for e in events.Scalars(name)] for name in names}
    assert [step for step, _ in logged[names[1]]] == [0, 3]  # once per measurement: rank 0 alone logs

    document = evaluate(compose([f"ckpt={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}", *measures,
                                 f"output={tmp_path / 'single.json'}"], config_name="evaluate"))
    for name, values in logged.items():  # TensorBoard stores float32; the reconstruction sums in another order
        assert values[-1][1] == pytest.approx(document["results"][name]["value"], rel=1e-5, abs=1e-6)


def test_a_sweep_with_the_basic_launcher_refuses_several_processes_per_run(tmp_path):
    """Lightning would start rank 1 by running the command line again, i.e. the whole sweep: refused in words."""
    overrides = [o for o in tiny_run_overrides(tmp_path, 2) if not o.startswith("paths.output_dir=")]
    result = subprocess.run([sys.executable, "-m", "sngan_repro.train", "-m", "seed=0", *overrides, "trainer=ddp",
                             "trainer.accelerator=cpu", "trainer.devices=2", f"hydra.sweep.dir={tmp_path}"],
                            capture_output=True, text=True, timeout=120)
    message = ("trainer.devices=2 in a sweep (-m) needs a launcher that starts one task per device: use "
               "hydra/launcher=slurm, or sweep single-device runs and run multi-device ones one at a time without -m.")
    assert f"error: {message}" in result.stderr
    assert (tmp_path / "0" / "error.txt").read_text() == f"ConfigError: {message}\n"
    assert not (tmp_path / "0" / "checkpoints").exists()


@pytest.mark.parametrize("norm", sorted(NORMS))
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_combination_gives_every_parameter_a_gradient_in_its_update(family, norm, tmp_path):
    """What lets trainer=ddp run without DDP's unused-parameter search on every architecture and normalization: a
    critic update's loss reaches every critic parameter, and a generator update's every generator parameter."""
    if (family, norm) in REFUSED:
        return
    module = GAN(compose(combination_overrides(family, norm, tmp_path)))
    cfg = module.cfg
    real = torch.rand(4, cfg.dataset.channels, cfg.dataset.image_size, cfg.dataset.image_size) * 2 - 1
    module.discriminator_loss(real, step=0)[0].backward()
    assert [n for n, p in module.discriminator.named_parameters() if p.requires_grad and p.grad is None] == []
    module.loss.generator(module.discriminator(module.generator(module.sample_latent(4, "generator", 0)))).backward()
    assert [n for n, p in module.generator.named_parameters() if p.requires_grad and p.grad is None] == []

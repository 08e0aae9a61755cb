"""``python -m sngan_repro.sample``: the exported images are bit-exactly those the metrics score (same codes, eval
mode, uint8 truncation), as a .npz (uint8 NHWC, arr_0) or PNG files; bad output or n refused in one sentence."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import tiny_run_overrides
from PIL import Image

from sngan_repro import compose
from sngan_repro.errors import ConfigError
from sngan_repro.metrics.sample_quality import fixed_samples
from sngan_repro.module import load_gan
from sngan_repro.sample import metrics_batch_size, sample
from sngan_repro.train import run


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    run(compose(tiny_run_overrides(folder, 4, "logger=none", "metrics=digits", "metrics.measures.digits.every=0",
                                   "metrics.measures.digits.batch_size=16")))
    return folder / "checkpoints" / "last.ckpt"


def test_the_npz_holds_the_images_the_metrics_score_and_the_pngs_the_same(checkpoint, tmp_path):
    npz = sample(str(checkpoint), 37, str(tmp_path / "samples.npz"), device="cpu")
    with np.load(npz) as stored:
        exported = stored["arr_0"]
    gan = load_gan(checkpoint, "cpu")
    assert metrics_batch_size(gan.cfg) == 16
    with torch.no_grad():
        scored = torch.cat(list(fixed_samples(gan, 37, 16))).permute(0, 2, 3, 1).numpy()
    assert exported.dtype == np.uint8 and exported.shape == (37, 16, 16, 1) and np.array_equal(exported, scored)
    folder = sample(str(checkpoint), 37, str(tmp_path / "pngs"), device="cpu")
    read = np.stack([np.asarray(Image.open(folder / f"{index:06d}.png")) for index in range(37)])
    assert np.array_equal(read, exported[..., 0])


@pytest.mark.parametrize("n, output, sentence", [
    (0, "new.npz", "n=0 must be a positive number of images."),
    (5, "exists.npz", "output={} exists; give a new .npz file, or remove it first."),
    (5, "full", "output={} is not an empty folder; give a new or empty folder, or a .npz file."),
])
def test_bad_n_or_output_is_refused_in_one_sentence(checkpoint, tmp_path, n, output, sentence):
    (tmp_path / "exists.npz").write_bytes(b"")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a.png").write_bytes(b"")
    with pytest.raises(ConfigError, match="^" + sentence.format(tmp_path / output).replace(".", r"\.")
                       .replace("(", r"\(").replace(")", r"\)") + "$"):
        sample(str(checkpoint), n, str(tmp_path / output), device="cpu")


@pytest.mark.slow
def test_the_command_writes_the_images(checkpoint, tmp_path):
    result = subprocess.run([sys.executable, "-m", "sngan_repro.sample", f"ckpt={checkpoint}", "n=5",
                             f"output={tmp_path / 'out.npz'}"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == f"written: 5 images to {tmp_path / 'out.npz'}"
    with np.load(tmp_path / "out.npz") as stored:
        assert stored["arr_0"].shape == (5, 16, 16, 1)

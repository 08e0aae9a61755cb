"""``python -m sngan_repro.sample``: the exported images are bit-exactly those the metrics score (same codes, eval
mode, uint8 truncation), as a .npz (uint8 NHWC, arr_0) or PNG files; bad output or n refused in one sentence."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_run_overrides
from PIL import Image

from sngan_repro import compose
from sngan_repro.errors import ConfigError
from sngan_repro.metrics.sample_quality import fixed_samples
from sngan_repro.module import load_gan
from sngan_repro.sample import metrics_batch_size, sample, sample_images
from sngan_repro.train import run


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    run(compose(tiny_run_overrides(folder, 4, "logger=none", "metrics=digits", "metrics.measures.digits.every=0",
                                   "metrics.measures.digits.batch_size=16")))
    return folder / "checkpoints" / "last.ckpt"


def test_the_npz_holds_the_images_the_metrics_score_and_the_pngs_the_same(checkpoint, tmp_path):
    record = sample(str(checkpoint), 37, str(tmp_path / "samples.npz"), device="cpu")
    with np.load(record["output"]) as stored:
        exported = stored["arr_0"]
    gan = load_gan(checkpoint, "cpu")
    assert metrics_batch_size(gan.cfg) == 16
    with torch.no_grad():
        scored = torch.cat(list(fixed_samples(gan, 37, 16))).permute(0, 2, 3, 1).numpy()
    assert exported.dtype == np.uint8 and exported.shape == (37, 16, 16, 1) and np.array_equal(exported, scored)
    assert np.array_equal(sample_images(gan, 37).permute(0, 2, 3, 1).numpy(), exported)  # the Python API's
    assert json.loads((tmp_path / "samples.npz.json").read_text())["g_step"] == gan.g_step
    folder = Path(sample(str(checkpoint), 37, str(tmp_path / "pngs"), device="cpu")["output"])
    read = np.stack([np.asarray(Image.open(folder / f"{index:06d}.png")) for index in range(37)])
    assert np.array_equal(read, exported[..., 0]) and len(list(folder.glob("*.png"))) == 37
    assert json.loads((folder / "export.json").read_text())["written_per_process"] == [37]


@pytest.mark.parametrize("settings, sentence", [
    ({"n": 0}, "n=0 must be a positive number of images."),
    ({"output": "exists.npz"}, "output={tmp}/exists.npz exists; give a new .npz file, or remove it first."),
    ({"output": "full"}, "output={tmp}/full is not an empty folder; give a new or empty folder, or a .npz file."),
    ({"output": "afile/x.npz"}, "The folder {tmp}/afile (output) cannot be written (it is a file); set output to a "
                                "location this user can write."),
    ({"devices": 0}, "devices=0 must be a positive number of processes."),
    ({"devices": 2, "device": "cuda:1"}, "device=cuda:1 names one device but devices=2 starts 2 processes; give "
                                         "device=auto, cpu or cuda."),
])
def test_bad_n_output_or_devices_are_refused_in_one_sentence(checkpoint, tmp_path, settings, sentence):
    (tmp_path / "exists.npz").write_bytes(b"")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a.png").write_bytes(b"")
    (tmp_path / "afile").write_bytes(b"")
    arguments = {"n": 5, "device": "cpu", **settings, "output": str(tmp_path / settings.get("output", "new.npz"))}
    with pytest.raises(ConfigError) as error:
        sample(str(checkpoint), **arguments)
    assert str(error.value) == sentence.format(tmp=tmp_path)
    assert not (tmp_path / "new.npz").exists()


@pytest.mark.slow
def test_the_command_writes_the_images(checkpoint, tmp_path):
    result = subprocess.run([sys.executable, "-m", "sngan_repro.sample", f"ckpt={checkpoint}", "n=5",
                             f"output={tmp_path / 'out.npz'}"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == f"written: 5 images to {tmp_path / 'out.npz'}"
    with np.load(tmp_path / "out.npz") as stored:
        assert stored["arr_0"].shape == (5, 16, 16, 1)


@pytest.mark.slow
@pytest.mark.parametrize("output", ["pngs", "samples.npz"])
def test_two_processes_write_each_image_once_and_the_images_of_one_process(checkpoint, tmp_path, output):
    """devices=2 (Fabric's DDP, gloo): 37 images in chunks of 16 are chunks 0 and 2 (21 images) in process 0 and
    chunk 1 (16) in process 1; the files equal those one process writes, and by default a run's export goes to its
    exports folder."""
    alone = sample(str(checkpoint), 37, str(tmp_path / "alone.npz"), device="cpu")
    with np.load(alone["output"]) as stored:
        expected = stored["arr_0"]
    target = tmp_path / output
    result = subprocess.run([sys.executable, "-m", "sngan_repro.sample", f"ckpt={checkpoint}", "n=37", "devices=2",
                             "device=cpu", f"output={target}"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == f"written: 37 images to {target} by 2 processes (21 + 16)"
    record = json.loads(((target / "export.json") if target.is_dir() else tmp_path / "samples.npz.json").read_text())
    assert record["written_per_process"] == [21, 16] and record["processes"] == 2
    if target.is_dir():
        files = sorted(target.glob("*.png"))
        assert [file.name for file in files] == [f"{index:06d}.png" for index in range(37)]
        assert np.array_equal(np.stack([np.asarray(Image.open(file)) for file in files]), expected[..., 0])
    else:
        with np.load(target) as stored:
            assert np.array_equal(stored["arr_0"], expected)


def test_a_missing_checkpoint_is_refused_before_any_folder_is_made(tmp_path):
    from sngan_repro.errors import CheckpointError

    with pytest.raises(CheckpointError):
        sample(str(tmp_path / "run" / "checkpoints" / "last.ckpt"), 3, device="cpu")
    assert not (tmp_path / "run").exists()


def test_the_default_output_is_the_runs_exports_folder(checkpoint):
    record = sample(str(checkpoint), 3, device="cpu")
    assert Path(record["output"]) == checkpoint.parent.parent / "exports" / "last_3.npz"
    Path(record["output"]).unlink()
    Path(record["output"] + ".json").unlink()

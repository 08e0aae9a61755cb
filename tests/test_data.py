"""Datamodules: the embedded digits, CIFAR-10 in its real on-disk format, the offline error, and
the resumable seeded sampler."""

import urllib.error

import pytest
import torch
import torchvision.datasets.cifar
from helpers.datasets import files_exist, write_cifar10

from sngan_repro.data import CIFAR10DataModule, DigitsDataModule, ResumableSampler
from sngan_repro.errors import ConfigError, DatasetUnavailableError


@pytest.mark.parametrize("channels", [1, 3])
def test_digits_images_shape_and_range(channels):
    dm = DigitsDataModule(image_size=32, channels=channels, value_range=(-1, 1))
    dm.setup()
    images = dm.train_set.images
    assert images.shape == (1797, channels, 32, 32) and images.dtype == torch.uint8
    scaled = dm.to_value_range(images)
    assert scaled.min().item() == -1.0 and scaled.max().item() == 1.0
    if channels == 3:  # replicated grey
        assert torch.equal(images[:, 0], images[:, 2])


def test_digits_follow_the_generator_range():
    dm = DigitsDataModule(image_size=16, value_range=(0, 1))
    dm.setup()
    scaled = dm.to_value_range(dm.train_set.images[:100])
    assert scaled.min().item() == 0.0 and scaled.max().item() == 1.0


def test_digits_upsampling_keeps_the_digit():
    from sklearn.datasets import load_digits

    dm = DigitsDataModule(image_size=32)
    dm.setup()
    down = torch.nn.functional.avg_pool2d(dm.train_set.images[:50].float() / 255, 4)
    native = torch.from_numpy(load_digits().images[:50]).float().unsqueeze(1) / 16
    assert (down - native).abs().mean() < 0.08


def test_digits_rejects_impossible_channels():
    with pytest.raises(ConfigError, match="dataset.channels=2"):
        DigitsDataModule(channels=2)


def test_sampler_is_an_endless_sequence_of_seeded_permutations():
    stream = iter(ResumableSampler(10, seed=3))
    first = [next(stream) for _ in range(25)]
    assert sorted(first[:10]) == list(range(10)) and sorted(first[10:20]) == list(range(10))
    assert first[:10] != first[10:20]
    resumed = iter(ResumableSampler(10, seed=3, start=13))
    assert [next(resumed) for _ in range(12)] == first[13:25]


@pytest.mark.parametrize("world_size", [2, 3])
def test_sampler_ranks_interleave_the_single_process_stream(world_size):
    """Rank r takes positions r, r + w, ... of the global stream (11 images: passes do not split evenly), and a
    rank resumed at its k-th index continues there, so the ranks' k-th batches make the global k-th batch."""
    single = iter(ResumableSampler(11, seed=0))
    stream = [next(single) for _ in range(60)]
    for rank in range(world_size):
        share = iter(ResumableSampler(11, seed=0, rank=rank, world_size=world_size))
        assert [next(share) for _ in range(60 // world_size)] == stream[rank::world_size]
        resumed = iter(ResumableSampler(11, seed=0, start=7, rank=rank, world_size=world_size))
        assert [next(resumed) for _ in range(5)] == stream[rank::world_size][7:12]


def test_dataloader_resumes_at_consumed_batches():
    dm = DigitsDataModule(image_size=8, batch_size=32, seed=5)
    fresh = iter(dm.train_dataloader())
    batches = [next(fresh) for _ in range(4)]
    dm.load_state_dict({"batches_consumed": 3})
    assert torch.equal(next(iter(dm.train_dataloader())), batches[3])


def test_cifar10_loads_the_real_on_disk_format(tmp_path, monkeypatch):
    rows = write_cifar10(tmp_path)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", files_exist)
    dm = CIFAR10DataModule(root=str(tmp_path), download=False, batch_size=4)
    dm.prepare_data()
    dm.setup()
    images = dm.train_set.images
    assert images.shape == (20, 3, 32, 32)  # the training batches only, not test_batch
    for i in (0, 7, 19):
        assert torch.equal(images[i], torch.from_numpy(rows[i].reshape(3, 32, 32)))


@pytest.mark.parametrize("download", [True, False])
def test_cifar10_offline_error_says_where_and_how(tmp_path, monkeypatch, download):
    # torchvision's fetch is replaced by an offline one, so the test never reaches the network (with one,
    # torchvision would download the 163 MB archive); it records what torchvision asked for
    requests = []

    def offline_download(url, download_root, *args, **kwargs):
        requests.append((url, str(download_root)))
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline_download)
    dm = CIFAR10DataModule(root=str(tmp_path / "cifar10"), download=download)
    with pytest.raises(DatasetUnavailableError) as error:
        dm.prepare_data()
    # dataset.download=true asks torchvision for the archive into dataset.root; false never asks
    assert requests == ([(torchvision.datasets.CIFAR10.url, str(tmp_path / "cifar10"))] if download else [])
    message = str(error.value)
    assert message.startswith(f"CIFAR-10 was not found (or is corrupt) in {tmp_path / 'cifar10'} and ")
    assert ("the download failed" in message and "no network" in message) == download
    assert "cifar-10-python.tar.gz" in message and "dataset.root" in message
    assert message.endswith("; offline, the embedded digits need no download (dataset=digits, as make demo runs).")
    assert message.count(". ") == 0  # one sentence


def test_cifar10_missing_stops_the_run_before_training(tmp_path):
    """(The command line prints such a sentence with exit code 2: tests/test_reliability.py.)"""
    from sngan_repro import compose
    from sngan_repro.errors import DatasetUnavailableError
    from sngan_repro.train import run

    run_dir = tmp_path / "run"
    with pytest.raises(DatasetUnavailableError, match=r"^CIFAR-10 was not found \(or is corrupt\) in "):
        run(compose(["dataset=cifar10", "dataset.download=false", f"paths.data_dir={tmp_path / 'data'}",
                     f"paths.output_dir={run_dir}", "logger=none"]))
    assert (run_dir / "config.yaml").is_file() and not (run_dir / "checkpoints").exists()

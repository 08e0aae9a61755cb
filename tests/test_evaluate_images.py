"""``evaluate images=... (dataset=... | reference=...)``: images from anywhere scored by the same metric objects.

Exported samples and the real images written to files give the numbers of the checkpoint and its dataset; the
folder of ``sample`` scored by torch-fidelity's own API gives our IS/FID; bad inputs are refused in one sentence.
"""

import numpy as np
import pytest
import torch
from conftest import tiny_run_overrides
from PIL import Image

from sngan_repro import compose
from sngan_repro.data import build_datamodule
from sngan_repro.data.image_set import ImageSet
from sngan_repro.errors import ConfigError
from sngan_repro.evaluate import evaluate
from sngan_repro.module import load_gan
from sngan_repro.sample import sample, sample_images
from sngan_repro.train import run


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    run(compose(tiny_run_overrides(folder, 4, "logger=none")))
    return folder / "checkpoints" / "last.ckpt"


def _evaluate(tmp_path, *overrides: str) -> dict:
    return evaluate(compose([*overrides, f"paths.cache_dir={tmp_path / 'cache'}"], config_name="evaluate"))


def _write_real_images(checkpoint, count: int, folder) -> None:
    """The training images the checkpoint's metrics compare with (``iter_images``' seeded subset), as PNG files."""
    folder.mkdir()
    real = torch.cat(list(build_datamodule(load_gan(checkpoint).cfg).iter_images("train", count, 64)))
    for index, image in enumerate(real.permute(0, 2, 3, 1).numpy()):
        Image.fromarray(image[..., 0]).save(folder / f"{index:05d}.png")


DIGITS = ("metrics=digits", "metrics.measures.digits.batch_size=50",
          "metrics.measures.digits.inception_score={samples: 200, splits: 2}",
          "metrics.measures.digits.fid={samples: 200, real: 300}",
          "metrics.measures.digits.kid={samples: 150, real: 300, subsets: 3, subset_size: 100}",
          "metrics.measures.digits.precision_recall={samples: 200, real: 300, k: 3}")


def test_two_folders_holding_the_samples_and_the_real_images_give_the_numbers_of_the_checkpoint(checkpoint, tmp_path):
    on_checkpoint = _evaluate(tmp_path, f"ckpt={checkpoint}", *DIGITS, f"output={tmp_path / 'ckpt.json'}")
    exported = sample(str(checkpoint), 200, str(tmp_path / "samples"), batch_size=50, device="cpu")["output"]
    _write_real_images(checkpoint, 300, tmp_path / "real")
    folders = _evaluate(tmp_path, f"images={exported}", f"reference={tmp_path / 'real'}", *DIGITS)
    assert len(on_checkpoint["results"]) == 7
    for name, entry in on_checkpoint["results"].items():  # the same images: the same features, the same numbers
        assert folders["results"][name.replace("_vs_train", "_vs_ref")]["value"] == pytest.approx(entry["value"],
                                                                                                 rel=1e-12)
    assert folders["output"] == str(tmp_path / "samples_digits.json") and folders["checkpoint"] is None
    assert folders["images"]["export"]["checkpoint"] == str(checkpoint.resolve())
    protocol = folders["results"]["digits_fid/200_vs_ref300"]["protocol"]
    assert f"the first 200 of the 200 images of {tmp_path / 'samples'} (exported by sngan_repro.sample from " \
           f"{checkpoint.resolve()} at g_step 4" in protocol
    assert f"vs the reference, the first 300 of the 300 images of {tmp_path / 'real'}" in protocol
    assert "vs 300 training images" in on_checkpoint["results"]["digits_fid/200_vs_train300"]["protocol"]


def test_the_npz_round_trips_bit_exactly_and_scores_as_the_checkpoint_against_its_dataset(checkpoint, tmp_path):
    npz = sample(str(checkpoint), 200, str(tmp_path / "samples.npz"), batch_size=50, device="cpu")["output"]
    stored = torch.cat(list(ImageSet(npz, "images").batches(200, 64)))
    assert stored.dtype == torch.uint8 and torch.equal(stored, sample_images(load_gan(checkpoint), 200, 50))
    on_checkpoint = _evaluate(tmp_path, f"ckpt={checkpoint}", *DIGITS, f"output={tmp_path / 'ckpt.json'}")
    on_npz = _evaluate(tmp_path, f"images={npz}", "dataset=digits", "dataset.image_size=16", *DIGITS)
    assert {name: entry["value"] for name, entry in on_npz["results"].items()} == pytest.approx(
        {name: entry["value"] for name, entry in on_checkpoint["results"].items()}, rel=1e-12)
    assert on_npz["dataset"]["image_size"] == 16 and on_npz["reference"] is None


@pytest.mark.slow
def test_the_exported_folder_scored_by_torch_fidelity_gives_our_is_and_fid(checkpoint, tmp_path, inception_weights):
    """With a random-weights Inception file of the right shapes: ``evaluate`` on the checkpoint, and
    ``torch_fidelity.calculate_metrics`` (its own API) on the folder ``sample`` writes against a folder of the
    same real images."""
    import torch_fidelity

    inception = "metrics.measures.inception"
    ours = _evaluate(tmp_path, f"ckpt={checkpoint}", "metrics=train_fast",
                     f"metrics.inception_weights={inception_weights}",
                     f"{inception}.inception_score={{samples: 20, splits: 2}}",
                     f"{inception}.fid={{samples: 20, real: 30}}", f"{inception}.batch_size=10",
                     f"output={tmp_path / 'ours.json'}")["results"]
    exported = sample(str(checkpoint), 20, str(tmp_path / "samples"), batch_size=10, device="cpu")["output"]
    _write_real_images(checkpoint, 30, tmp_path / "real")
    theirs = torch_fidelity.calculate_metrics(
        input1=exported, input2=str(tmp_path / "real"), isc=True, fid=True, isc_splits=2, cuda=False, cache=False,
        verbose=False, batch_size=10, feature_extractor_weights_path=inception_weights)
    assert ours["fid/20_vs_train30"]["value"] > 1  # random He-scaled weights still separate the two sets
    assert ours["is/20_2splits"]["value"] == pytest.approx(theirs["inception_score_mean"], rel=1e-5)
    assert ours["fid/20_vs_train30"]["value"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-5)


def test_bad_images_and_combinations_are_refused_in_one_sentence(checkpoint, tmp_path):
    np.savez(tmp_path / "floats.npz", arr_0=np.zeros((4, 8, 8, 3)))
    np.savez(tmp_path / "four.npz", arr_0=np.zeros((4, 8, 8, 1), dtype=np.uint8))
    (tmp_path / "empty").mkdir()
    four, digits = f"images={tmp_path / 'four.npz'}", "dataset=digits"
    cases = {
        (f"ckpt={checkpoint}", four): "Give exactly one of ckpt=<checkpoint> and images=<folder or .npz> to "
                                      "evaluate; got both.",
        (four, digits): "images= has no run whose metrics to take; give metrics=<preset>, e.g. metrics=full or "
                        "metrics=digits.",
        (four, "metrics=digits"): "images= is compared with dataset=<name> (its training images) or with "
                                  "reference=<folder or .npz>; give exactly one of them.",
        (f"ckpt={checkpoint}", digits): "dataset=digits is for images=; a checkpoint is compared with its run's "
                                        "dataset, or with reference=<folder or .npz>.",
        (four, digits, "metrics=digits"): f"images={tmp_path / 'four.npz'} holds 4 images but "
                                          f"metrics.measures.digits scores 2000; give at least that many, or fewer "
                                          f"samples in its settings.",
        (four, digits, "metrics=xiang_final"): "metrics.measures.reconstruction needs a checkpoint's generator and "
                                               "its run's data, which images= does not give; evaluate it on the "
                                               "checkpoint alone, or switch it off with "
                                               "metrics.measures.reconstruction=null.",
        (f"images={tmp_path / 'nowhere'}", digits, "metrics=digits"):
            f"images={tmp_path / 'nowhere'} is neither a folder nor a .npz file; give a folder of images or a .npz "
            f"(uint8, N x H x W x C under arr_0).",
        (f"images={tmp_path / 'floats.npz'}", digits, "metrics=digits"):
            f"images={tmp_path / 'floats.npz'} has arr_0 float64 (4, 8, 8, 3); expected uint8 images N x H x W x C "
            f"(C 1 or 3) under arr_0.",
        (f"images={tmp_path / 'empty'}", digits, "metrics=digits"):
            f"images={tmp_path / 'empty'} holds no image files (accepted: .jpg, .jpeg, .png, .bmp, .webp, .tif, "
            f".tiff, .ppm, .pgm); give a folder of images or a .npz.",
    }
    for overrides, sentence in cases.items():
        with pytest.raises(ConfigError) as error:
            _evaluate(tmp_path, *overrides)
        assert str(error.value) == sentence, overrides
    assert not list(tmp_path.glob("*.json"))

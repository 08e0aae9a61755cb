"""Every dataset read from its real on-disk format, made here in a temporary folder, through the
real code path (torchvision's readers); the held-out split; and the missing-data messages."""

import io

import lmdb
import numpy as np
import pytest
import torch
import torchvision.datasets.celeba
import torchvision.datasets.cifar
import torchvision.datasets.stl10
from helpers.datasets import files_exist, write_cifar10
from PIL import Image

from sngan_repro.data import (
    CelebADataModule,
    CIFAR10DataModule,
    ImageFolderDataModule,
    LSUNDataModule,
    STL10DataModule,
    SyntheticDataModule,
)
from sngan_repro.errors import ConfigError, DatasetUnavailableError

RNG = np.random.default_rng(0)


def _png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


# -- CIFAR-10: pooled splits and class selection ----------------------------------------------------

def test_cifar10_pools_test_split_and_selects_classes(tmp_path, monkeypatch):
    write_cifar10(tmp_path, images_per_batch=10)  # one image of each class per batch
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", files_exist)

    def count(**options):
        dm = CIFAR10DataModule(root=str(tmp_path), download=False, batch_size=2, **options)
        dm.setup()
        return len(dm.train_set)

    assert count() == 50 and count(split="train+test") == 60
    assert count(classes=["frog"]) == 5 and count(classes=[6, "cat"], split="train+test") == 12
    with pytest.raises(ConfigError, match="dataset.classes has 'dragon'"):
        CIFAR10DataModule(root=str(tmp_path), classes=["dragon"])


def test_cifar10_at_28_px_is_torchvisions_resize_of_the_images(tmp_path, monkeypatch):
    """Feng, Xu & Li's code trains on CIFAR-10 at 28 px (transforms.Resize((28, 28)) on the PIL images): ours resizes
    the stored images to the same pixels, up to rounding."""
    from torchvision import transforms

    rows = write_cifar10(tmp_path, images_per_batch=4)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", files_exist)
    datamodule = CIFAR10DataModule(root=str(tmp_path), download=False, batch_size=2, image_size=28)
    ours = datamodule.images("train").int()
    resize = transforms.Compose([transforms.Resize((28, 28)), transforms.PILToTensor()])
    theirs = torch.stack([resize(Image.fromarray(row.reshape(3, 32, 32).transpose(1, 2, 0))) for row in rows]).int()
    assert ours.shape == theirs.shape == (20, 3, 28, 28)
    assert (ours - theirs).abs().max() <= 1
    with pytest.raises(ConfigError, match=r"^CIFAR-10 serves RGB images of 8 to 32 px .* got dataset.image_size=48,"):
        CIFAR10DataModule(root=str(tmp_path), image_size=48)


# -- STL-10 binaries -----------------------------------------------------------------------------------

def _write_stl10(root, train=3, unlabeled=5):
    """STL-10's binary format: uint8 images stored column-major (3, 96, 96) per image."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    images = {"train": RNG.integers(0, 256, (train, 3, 96, 96), dtype=np.uint8),
              "unlabeled": RNG.integers(0, 256, (unlabeled, 3, 96, 96), dtype=np.uint8),
              "test": RNG.integers(0, 256, (2, 3, 96, 96), dtype=np.uint8)}
    for split, array in images.items():
        array.transpose(0, 1, 3, 2).tofile(folder / f"{split}_X.bin")  # column-major on disk
        if split != "unlabeled":
            np.ones(len(array), dtype=np.uint8).tofile(folder / f"{split}_y.bin")
    (folder / "class_names.txt").write_text("\n".join(f"class{i}" for i in range(10)))
    return np.concatenate([images["train"], images["unlabeled"]])


def test_stl10_reads_binaries_and_resizes_like_pil(tmp_path, monkeypatch):
    expected = _write_stl10(tmp_path)
    monkeypatch.setattr(torchvision.datasets.stl10, "check_integrity", files_exist)
    native = STL10DataModule(root=str(tmp_path), download=False, image_size=96, batch_size=2)
    native.setup()
    assert torch.equal(native.train_set.images, torch.from_numpy(expected))  # train first, then unlabeled
    small = STL10DataModule(root=str(tmp_path), download=False, batch_size=2)  # 48 px, the papers' size
    small.setup()
    assert small.train_set.images.shape == (8, 3, 48, 48)
    pil = np.array(Image.fromarray(expected[4].transpose(1, 2, 0)).resize((48, 48), Image.BILINEAR))
    difference = small.train_set.images[4].permute(1, 2, 0).int() - torch.from_numpy(pil).int()
    assert difference.abs().max() <= 2  # PIL's antialiased bilinear, up to rounding


# -- CelebA ----------------------------------------------------------------------------------------------

def _write_celeba(root, count=4):
    """CelebA's layout: img_align_celeba/*.jpg (178x218) and the five annotation files."""
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(count)]
    for name in names:
        Image.fromarray(RNG.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(folder / "img_align_celeba" / name)
    (folder / "list_eval_partition.txt").write_text("".join(f"{n} 0\n" for n in names))
    (folder / "identity_CelebA.txt").write_text("".join(f"{n} 1\n" for n in names))
    (folder / "list_bbox_celeba.txt").write_text(f"{count}\nimage_id x_1 y_1 width height\n"
                                                 + "".join(f"{n} 1 2 3 4\n" for n in names))
    (folder / "list_landmarks_align_celeba.txt").write_text(f"{count}\nlefteye_x lefteye_y\n"
                                                            + "".join(f"{n} 1 2\n" for n in names))
    (folder / "list_attr_celeba.txt").write_text(f"{count}\nSmiling Young\n" + "".join(f"{n} 1 -1\n" for n in names))
    return [folder / "img_align_celeba" / n for n in names]


def test_celeba_center_crops_160(tmp_path, monkeypatch):
    paths = _write_celeba(tmp_path)
    monkeypatch.setattr(torchvision.datasets.celeba, "check_integrity", files_exist)
    dm = CelebADataModule(root=str(tmp_path), batch_size=2)
    dm.prepare_data()
    dm.setup()
    image = dm.train_set[2]
    assert image.shape == (3, 160, 160) and image.dtype == torch.uint8
    with Image.open(paths[2]) as original:  # central 160x160 patch of the 178x218 image
        expected = np.asarray(original.convert("RGB").crop((9, 29, 169, 189)))
    assert torch.equal(image.permute(1, 2, 0), torch.from_numpy(expected))
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (2, 3, 160, 160) and batch.dtype == torch.uint8


# -- LSUN (LMDB) -------------------------------------------------------------------------------------------

def test_lsun_reads_lmdb_and_center_crops(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # torchvision caches the LMDB keys in a file in the working directory
    arrays = [RNG.integers(0, 256, (30, 40, 3), dtype=np.uint8) for _ in range(3)]
    (tmp_path / "lsun").mkdir()
    environment = lmdb.open(str(tmp_path / "lsun" / "bedroom_train_lmdb"), map_size=1 << 24)
    with environment.begin(write=True) as transaction:
        for i, array in enumerate(arrays):
            transaction.put(f"{i:04d}".encode(), _png_bytes(array))
    environment.close()
    dm = LSUNDataModule(root=str(tmp_path / "lsun"), image_size=20, batch_size=1)
    dm.prepare_data()
    dm.setup()
    assert len(dm.train_set) == 3
    expected = Image.fromarray(arrays[1]).resize((26, 20), Image.BILINEAR)  # shorter side -> 20, 40 * 20 / 30
    expected = np.asarray(expected.crop((3, 0, 23, 20)))  # then the central 20x20
    assert torch.equal(dm.train_set[1].permute(1, 2, 0), torch.from_numpy(expected))


# -- image folder ----------------------------------------------------------------------------------------------

def test_imagefolder_finds_images_recursively(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    Image.fromarray(RNG.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(tmp_path / "a" / "one.png")
    Image.fromarray(RNG.integers(0, 256, (50, 50), dtype=np.uint8)).save(tmp_path / "a" / "b" / "two.png")
    (tmp_path / "notes.txt").write_text("not an image")
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=16, batch_size=2)
    dm.setup()
    assert len(dm.train_set) == 2
    assert all(dm.train_set[i].shape == (3, 16, 16) for i in range(2))  # grey converted to RGB
    grey = dm.train_set[0]  # sorted paths: a/b/two.png comes first
    assert torch.equal(grey[0], grey[2])


# -- held-out split --------------------------------------------------------------------------------------------

def test_heldout_split_is_disjoint_fixed_and_never_trained_on():
    def make(seed):
        dm = SyntheticDataModule(image_size=4, channels=1, size=300, heldout=40, batch_size=32, seed=seed)
        dm.setup()
        return dm

    first, other_run = make(seed=0), make(seed=7)  # the run seed changes the batch order, not the split
    assert torch.equal(first.heldout_set.images, other_run.heldout_set.images)
    assert len(first.train_set) == 260 and len(first.heldout_set) == 40
    heldout = {bytes(image.flatten().tolist()) for image in first.heldout_set.images}
    stream = iter(first.train_dataloader())
    seen = set()
    for _ in range(3 * 260 // 32):  # three passes over the training images
        seen |= {bytes(image.flatten().tolist()) for image in next(stream)}
    assert len(seen) == 260 and not seen & heldout


def test_heldout_cannot_take_every_image():
    dm = SyntheticDataModule(size=10, heldout=10, batch_size=2)
    with pytest.raises(ConfigError, match="dataset.heldout=10 leaves no training images"):
        dm.setup()


# -- missing data --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make,start", [
    (lambda root: STL10DataModule(root=root, download=False), "STL-10 was not found (or is corrupt) in "),
    (lambda root: CelebADataModule(root=root), "CelebA was not found (or is corrupt) in "),
    (lambda root: ImageFolderDataModule(root=root), "No images were found in "),
    (lambda root: LSUNDataModule(root=root), "LSUN bedroom_train was not found (or is corrupt) in "),
])
def test_missing_datasets_say_where_and_how(tmp_path, monkeypatch, make, start):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetUnavailableError) as error:
        make(str(tmp_path / "nothing")).prepare_data()
    message = str(error.value)
    assert message.startswith(start) and str(tmp_path / "nothing") in message
    assert message.count(". ") == 0  # one sentence

"""Checkpoint files: written atomically, and checked before a run resumes from one or evaluates one.

Written atomically: a crash, a kill or a full disk while writing leaves the previous file. Lightning's own
writer stages the file in the system's temporary folder and then moves it, which on another filesystem (a
node-local /tmp, a network home) is a copy that can itself be interrupted half-way. Here the file is written
next to its destination, flushed to disk, and renamed over it: a rename within a directory is atomic.
"""

import errno
import os
import zipfile
from pathlib import Path

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning_fabric.utilities.cloud_io import get_filesystem
from omegaconf import OmegaConf

from .errors import CheckpointError, DiskFullError, raised_from

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def checkpoint_folders(trainer) -> list[str]:
    """The folders the trainer's checkpoint callbacks write into."""
    return [callback.dirpath for callback in trainer.checkpoint_callbacks if callback.dirpath]


def newest_checkpoint(*directories) -> Path | None:
    """The most recently written ``*.ckpt`` file in ``directories`` (staging files are not ``*.ckpt``)."""
    found = [path for directory in directories for path in Path(directory).glob("*.ckpt") if path.is_file()]
    return max(found, key=lambda path: path.stat().st_mtime, default=None)


def disk_full_cause(error: BaseException) -> OSError | None:
    """The full-disk ``OSError`` that ``error`` is or was raised from (Lightning's TensorBoard logger wraps its
    writer's errors in a ValueError), if any."""
    return raised_from(error, lambda cause: isinstance(cause, OSError) and cause.errno in DISK_FULL)


def disk_full_error(what: str, *checkpoint_directories) -> DiskFullError:
    """The sentence for a disk that filled up while writing ``what``, naming the checkpoint to resume from."""
    newest = newest_checkpoint(*checkpoint_directories)
    advice = (f"the checkpoints written before stay; free space and resume with ckpt_path={newest}" if newest else
              "free space and run again")
    return DiskFullError(f"The disk filled up while writing {what}: {advice}.")


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose ``save_checkpoint`` writes ``.<name>.<pid>.tmp`` beside a local file, then renames
    it; remote paths (s3://, ...) keep Lightning's writer."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(staging, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(staging, path)
        except OSError as error:
            if disk_full_cause(error) is None:
                raise
            raise disk_full_error(f"the checkpoint {path}", path.parent) from error
        finally:
            staging.unlink(missing_ok=True)  # only left when writing failed


def check_checkpoint(path) -> Path:
    """A resumable checkpoint: it exists, loads with ``weights_only=True`` (tensors and plain containers only, never
    arbitrary pickled objects) and was written by a training run; raise CheckpointError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ckpt_path={str(path)!r} does not exist; "
                              f"give the path of a .ckpt file written by a run.")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"ckpt_path={str(path)!r} is not a readable checkpoint (not a torch zip archive); "
                              f"it may be truncated or corrupt.")
    try:  # memory-mapped: the tensors are not read, only the structure
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # a damaged archive, or pickled objects weights_only loading refuses
        raise CheckpointError(f"ckpt_path={str(path)!r} is not a loadable checkpoint ({type(error).__name__}); it "
                              f"may be damaged or hold objects other than tensors and plain containers.") from error
    if not isinstance(checkpoint, dict) or "gan_counters" not in checkpoint:
        raise CheckpointError(f"ckpt_path={str(path)!r} was not written by sngan_repro.train (it has no generator "
                              f"and critic step counters); give a checkpoint of a run.")
    return path


def load_training_state(path, module: torch.nn.Module) -> None:
    """Put a checkpoint's weights and step counters into ``module`` without a Trainer (a run that has nothing left
    to train: its optimizer states are not needed)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    module.load_state_dict(checkpoint["state_dict"])
    module.on_load_checkpoint(checkpoint)


def checkpoint_g_step(path) -> int:
    """The generator updates a checkpoint of ``sngan_repro.train`` was written after."""
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)["gan_counters"]["g_step"]


def _network_settings(cfg: dict) -> dict:
    """The settings of a (plain-container) run config that decide its networks' weights, flattened: the dataset,
    architecture and normalization choices, every ``arch`` setting, the image size and the sample-grid size."""
    def leaves(node, prefix: str) -> dict:
        if not isinstance(node, dict):
            return {prefix: node}
        return {key: value for name, child in node.items() for key, value in leaves(child, f"{prefix}.{name}").items()}

    choices = cfg.get("choices", {})
    return {**{group: choices.get(group) for group in ("dataset", "arch", "norm", "gen_norm")},
            **leaves(cfg.get("arch", {}), "arch"), "dataset.image_size": cfg.get("dataset", {}).get("image_size"),
            "train.num_samples": cfg.get("train", {}).get("num_samples")}


def check_networks_match(path, module: torch.nn.Module) -> None:
    """Refuse, before training, a checkpoint whose networks are not those ``module`` builds (other names or shapes of
    weights: another architecture, normalization, width or image size), naming the file, the first differing weight
    and the settings of its run that differ from this run's."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)

    def layouts(state: dict) -> dict[str, str]:  # tensors by shape; a layer's extra state (a dict) by its type
        return {name: f"of shape {list(value.shape)}" if isinstance(value, torch.Tensor) else
                f"a {type(value).__name__}" for name, value in state.items()}

    theirs, ours = layouts(checkpoint.get("state_dict", {})), layouts(module.state_dict())
    differing = [name for name in sorted(ours.keys() | theirs.keys()) if ours.get(name) != theirs.get(name)]
    if not differing:
        return
    name = differing[0]
    there, here = (layout.get(name, "absent") for layout in (theirs, ours))
    written = _network_settings(checkpoint.get("hyper_parameters", {}).get("cfg", {}))
    current = _network_settings(OmegaConf.to_container(module.cfg, resolve=True))
    changed = [f"{key}={written[key]} there, {current.get(key)} here" for key in written
               if written[key] != current.get(key)]
    raise CheckpointError(f"ckpt_path={str(path)!r} holds other networks than this run builds ({name} is {there} "
                          f"there and {here} here{''.join('; ' + change for change in changed[:3])}); resume with "
                          f"the settings it was written with, or start a new run without ckpt_path.")

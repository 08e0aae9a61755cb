"""Export samples of a checkpoint: ``python -m sngan_repro.sample ckpt=<path> n=<N> [output=<folder or .npz>]``.

The images are those the metrics score (``metrics.sample_quality.fixed_samples``): the same fixed codes, the
generator in eval mode, outputs clamped and truncated to uint8. A ``.npz`` holds them as one uint8 array
(N, H, W, C) under ``arr_0``, the layout the TensorFlow IS/FID scripts read; a folder holds ``000000.png``, ...
Beside them, ``export.json`` (in the folder) or ``<file>.npz.json`` records where they came from
(``data.image_set.export_record_path``), which ``python -m sngan_repro.evaluate images=...`` carries into its
protocols.

With ``devices=N`` (Lightning Fabric's DDP: N local processes, or one per task under torchrun/SLURM) process r
generates chunks r, r + N, ... of the same sequence; each writes its own PNG files, and a ``.npz`` is gathered and
written by process 0, so the files are those of one process.
"""

import functools
import json
import sys
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image
from tqdm import tqdm

from .config import CONFIG_DIR, check_given, settings_of
from .data.image_set import export_record_path
from .errors import ConfigError, SnganReproError
from .metrics.sample_quality import fixed_samples, gather_chunks
from .module import chosen_device, load_gan
from .overrides import run_command
from .run_directory import RunDirectory, check_folders_writable, now, versions

DEFAULT_BATCH = 100


def metrics_batch_size(train_cfg: DictConfig) -> int:
    """The batch size of the checkpoint's run's first metric that has one (its samples' chunking)."""
    measures = (train_cfg.get("metrics") or {}).get("measures") or {}
    sizes = [node.get("batch_size") for node in measures.values() if node is not None and node.get("batch_size")]
    return int(sizes[0]) if sizes else DEFAULT_BATCH


def check_output(output: Path) -> None:
    if output.suffix == ".npz":
        if output.exists():
            raise ConfigError(f"output={output} exists; give a new .npz file, or remove it first.")
        folder = output.parent
    else:
        if output.is_file() or (output.is_dir() and any(output.iterdir())):
            raise ConfigError(f"output={output} is not an empty folder; give a new or empty folder, or a .npz file.")
        folder = output
    check_folders_writable({"output": str(folder)})


def sample_images(gan, n: int, batch_size: int | None = None) -> torch.Tensor:
    """``n`` samples of ``gan`` as uint8 (n, C, H, W) on its device: the images the metrics score and ``sample``
    writes (``batch_size``: their chunking, by default the run's metrics')."""
    with torch.no_grad():
        return torch.cat(list(fixed_samples(gan, n, batch_size or metrics_batch_size(gan.cfg))))


def _processes(device: str, devices: int):
    """(rank, world size, device, Fabric or None) of this process."""
    if not isinstance(devices, int) or isinstance(devices, bool) or devices < 1:
        raise ConfigError(f"devices={devices!r} must be a positive number of processes.")
    if devices == 1:
        return 0, 1, chosen_device(device), None
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device={device} names one device but devices={devices} starts {devices} processes; give "
                          f"device=auto, cpu or cuda.")
    from lightning_fabric import Fabric

    fabric = Fabric(accelerator={"auto": "auto", "cpu": "cpu", "cuda": "cuda"}[device], devices=devices,
                    strategy="ddp")
    fabric.launch()
    return fabric.global_rank, fabric.world_size, fabric.device, fabric


def _write_png(image: np.ndarray, path: Path) -> None:
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)


def sample(ckpt: str, n: int, output: str | None = None, batch_size: int | None = None, device: str = "auto",
           devices: int = 1) -> dict:
    """Write ``n`` samples of the checkpoint ``ckpt`` to ``output`` (default ``<run>/exports/<checkpoint>_<n>.npz``)
    in ``devices`` processes; return the export's record (its ``output``, the images written per process, ...)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"n={n!r} must be a positive number of images.")
    rank, world, chosen, fabric = _processes(device, devices)
    gan = load_gan(ckpt, chosen)  # first: a wrong checkpoint path must not leave an exports folder behind
    output_path = Path(output or RunDirectory.of_checkpoint(ckpt).exports / f"{Path(ckpt).stem}_{n}.npz")
    problem = None
    if rank == 0:  # one process checks (the others would see its first files), every process learns the outcome
        try:
            check_output(output_path)
        except ConfigError as error:
            problem = str(error)
    if fabric is not None:
        problem = fabric.broadcast(problem)
    if problem:
        raise ConfigError(problem)
    size = batch_size or metrics_batch_size(gan.cfg)
    chunks = range(0, n, size)
    mine = [min(size, n - start) for start in chunks][rank::world]
    local = []
    with torch.no_grad(), tqdm(total=sum(mine), unit="img", file=sys.stderr, disable=rank != 0,
                               desc="sampling" if world == 1 else f"sampling (process 0 of {world})") as progress:
        for index, images in zip(range(rank, len(chunks), world), fixed_samples(gan, n, size, rank, world)):
            pixels = images.permute(0, 2, 3, 1).cpu()  # NCHW -> NHWC
            if output_path.suffix == ".npz":
                local.append(pixels)
            else:
                for offset, image in enumerate(pixels.numpy()):
                    _write_png(image, output_path / f"{index * size + offset:06d}.png")
            progress.update(len(pixels))
    written = [sum(mine)]
    if output_path.suffix == ".npz":
        shape = (0, gan.cfg.dataset.image_size, gan.cfg.dataset.image_size, gan.cfg.dataset.channels)
        rows = torch.cat(local) if local else torch.zeros(shape, dtype=torch.uint8)
        array = (gather_chunks(rows.to(chosen), n, size, world, fabric.all_gather) if fabric else rows).numpy()
        if rank == 0:
            np.savez(output_path, arr_0=array)
    if fabric is not None:
        written = fabric.all_gather(torch.tensor(written[0], device=chosen)).flatten().tolist()
    record = {"output": str(output_path.resolve()), "checkpoint": str(Path(ckpt).resolve()), "g_step": gan.g_step,
              "n": n, "batch_size": size, "processes": world, "written_per_process": written,
              "images": "the metrics' samples: chunk c of batch_size from the codes of (seed, metrics stream, step c), "
                        "generator in eval mode, outputs clamped and truncated to uint8",
              "layout": "uint8 N x H x W x C under arr_0" if output_path.suffix == ".npz" else "PNG 000000.png, ...",
              "versions": versions(), "created": now()}
    if rank == 0:
        export_record_path(output_path).write_text(json.dumps(record, indent=2))
    if fabric is not None:
        fabric.barrier()  # process 0 returns (and its launcher may stop the others) once every file is written
    return record


@hydra.main(config_path=str(CONFIG_DIR), config_name="sample", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        check_given(cfg)
        record = sample(cfg.ckpt, cfg.n, cfg.output, cfg.batch_size, cfg.device, cfg.devices)
    except SnganReproError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    if torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        return  # process 0 reports
    if record["processes"] > 1:
        print(f"written: {record['n']} images to {record['output']} by {record['processes']} processes "
              f"({' + '.join(map(str, record['written_per_process']))})")
    else:
        print(f"written: {record['n']} images to {record['output']}")


if __name__ == "__main__":
    run_command(main, functools.partial(settings_of, config_name="sample"))

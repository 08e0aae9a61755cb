"""`make gpu-check`: one prepared command for the first minutes on a GPU, writing one JSON file and printing a short
table of what works there and how fast.

    .venv/bin/python scripts/gpu_check.py                            # on a machine with CUDA (make gpu-check)
    .venv/bin/python scripts/gpu_check.py --device cpu --smoke       # every line at tiny sizes, on the CPU (tests)

Built so far: the environment (torch, CUDA, cuDNN, the GPU's name and memory, the driver, this source's git commit).
The device checks (every architecture x normalization and its invariant, the precisions and accelerations, IS/FID
against the CPU), the speed ratios, the two-process run and the packing of small runs are the next steps of the
same command (issue 31).
"""

import argparse
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from sngan_repro.run_directory import git_state, source_dir, versions

NO_CUDA = ("error: make gpu-check needs a CUDA GPU, and torch sees none (torch.cuda.is_available() is False); on a "
           "CPU, scripts/gpu_check.py --device cpu --smoke runs every check at tiny sizes.")


def driver_version() -> str:
    """The NVIDIA driver's version as nvidia-smi reports it (torch does not expose it)."""
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi is None:
        return "unknown (nvidia-smi not found)"
    try:
        result = subprocess.run([nvidia_smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        return f"unknown (nvidia-smi: {type(error).__name__})"
    return result.stdout.splitlines()[0].strip() if result.returncode == 0 and result.stdout else "unknown"


def environment(device: torch.device) -> dict:
    """What the numbers were measured with: library versions, the build's CUDA and cuDNN, the device, the source."""
    git = git_state(source_dir())
    found = {"versions": versions(), "commit": git["commit"] if git else "not a git checkout",
             "uncommitted_changes": git["dirty"] if git else None, "torch_cuda_build": torch.version.cuda or "none",
             "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else "none",
             "device": str(device), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        found |= {"device_name": properties.name, "device_memory_gib": round(properties.total_memory / 2**30, 2),
                  "compute_capability": f"{properties.major}.{properties.minor}",
                  "visible_gpus": torch.cuda.device_count(), "driver": driver_version()}
    else:
        found |= {"device_name": platform.processor() or platform.machine(), "visible_gpus": 0}
    return found


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:1, ..., or cpu (with --smoke)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: every check runs, its numbers mean little")
    parser.add_argument("--output", default="benchmarks/gpu_check_{device}.json",
                        help="the JSON file ({device}: the device type)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        raise SystemExit(2)
    report = {"smoke": args.smoke, "environment": environment(device)}
    found = report["environment"]
    print(f"environment: torch {found['versions']['torch']} (CUDA build {found['torch_cuda_build']}, cuDNN "
          f"{found['cudnn']}), {found['device']}: {found['device_name']}"
          + (f", {found['device_memory_gib']} GiB, driver {found['driver']}" if device.type == "cuda" else "")
          + f"; commit {found['commit']}" + (" with uncommitted changes" if found["uncommitted_changes"] else ""))
    path = Path(args.output.format(device=device.type))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written to {path}")
    return report


if __name__ == "__main__":
    main()

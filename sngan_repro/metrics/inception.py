"""The TF-compatible Inception-v3 of torch-fidelity as a feature extractor.

The network is the TF "inception-2015-12-05" graph ported to PyTorch (the one torchmetrics
uses too); it takes uint8 images and resizes them to 299x299 with TF1's bilinear resize, as
the papers' IS/FID code did. We take the 2048-d pool features (FID) and the 1008-way
``logits_unbiased`` (IS).
"""

import hashlib
from pathlib import Path

import torch
from torch import nn

from ..errors import MetricsUnavailableError

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"


def _weights_id(weights_path: str | None) -> str:
    """Identifies the weights in cache keys: the published file, or a digest of a local one."""
    if weights_path is None:
        return WEIGHTS_FILE
    digest = hashlib.sha1()
    with open(weights_path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return f"{Path(weights_path).name}-{digest.hexdigest()[:12]}"


class InceptionFeatures(nn.Module):
    """uint8 (N, C, H, W) images -> (pool features (N, 2048), logits (N, 1008)), float64."""

    def __init__(self, weights_path: str | None = None):
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                               feature_extractor_weights_path=weights_path)
        self.name = f"inception-v3-compat[{_weights_id(weights_path)}]"

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape[1] == 1:  # grey datasets: the network takes RGB
            images = images.expand(-1, 3, -1, -1)
        pool, logits = self.net(images)
        return pool.double(), logits.double()


def load_inception(weights_path: str | None, device="cpu") -> InceptionFeatures:
    """The extractor, or one sentence on why it cannot be had and what to do."""
    if weights_path is not None and not Path(weights_path).is_file():
        raise MetricsUnavailableError(f"metrics.inception_weights={weights_path} does not exist; give the path of "
                                      f"{WEIGHTS_FILE} (torch-fidelity's Inception weights).")
    try:
        return InceptionFeatures(weights_path).to(device)
    except MetricsUnavailableError:
        raise
    except Exception as error:  # download errors (URLError, HTTPError) or a wrong/corrupt weights file
        where = "could not be downloaded" if weights_path is None else f"could not be loaded from {weights_path}"
        raise MetricsUnavailableError(
            f"The Inception weights {where} ({type(error).__name__}); on an offline machine download {WEIGHTS_FILE} "
            f"from torch-fidelity's releases elsewhere and set metrics.inception_weights=/path/to/{WEIGHTS_FILE}."
        ) from error


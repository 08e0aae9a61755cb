"""The TF-compatible Inception-v3 of torch-fidelity as a feature extractor, and the loading every published feature
network shares (local weights for offline machines, one sentence when they cannot be had).

The network is the TF "inception-2015-12-05" graph ported to PyTorch (the one torchmetrics
uses too); it takes uint8 images and resizes them to 299x299 with TF1's bilinear resize, as
the papers' IS/FID code did. We take the 2048-d pool features (FID, KID) and the 1008-way
``logits_unbiased`` (IS).
"""

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..errors import MetricsUnavailableError

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"


def weights_id(weights_path: str | None, published: str) -> str:
    """Identifies the weights in cache keys: the ``published`` file, or a digest of a local one."""
    if weights_path is None:
        return published
    digest = hashlib.sha1()
    with open(weights_path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return f"{Path(weights_path).name}-{digest.hexdigest()[:12]}"


def load_network(build: Callable[[str | None], nn.Module], weights_path: str | None, device, network: str,
                 published: str, source: str, setting: str) -> nn.Module:
    """``build(weights_path)`` on ``device``, or one sentence on why the ``network`` weights (the file ``published``
    by ``source``; a local copy is given as ``setting``) cannot be had and what to do."""
    if weights_path is not None and not Path(weights_path).is_file():
        raise MetricsUnavailableError(f"{setting}={weights_path} does not exist; give the path of {published} "
                                      f"({source}).")
    try:
        return build(weights_path).to(device)
    except MetricsUnavailableError:
        raise
    except Exception as error:  # download errors (URLError, HTTPError) or a wrong/corrupt weights file
        where = "could not be downloaded" if weights_path is None else f"could not be loaded from {weights_path}"
        raise MetricsUnavailableError(
            f"The {network} weights {where} ({type(error).__name__}); on an offline machine download {published} "
            f"from {source} elsewhere and set {setting}=/path/to/{published}."
        ) from error


class InceptionFeatures(nn.Module):
    """uint8 (N, C, H, W) images -> (pool features (N, 2048), logits (N, 1008)), float64."""

    def __init__(self, weights_path: str | None = None):
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                               feature_extractor_weights_path=weights_path)
        self.name = f"inception-v3-compat[{weights_id(weights_path, WEIGHTS_FILE)}]"

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape[1] == 1:  # grey datasets: the network takes RGB
            images = images.expand(-1, 3, -1, -1)
        pool, logits = self.net(images)
        return pool.double(), logits.double()


def load_inception(weights_path: str | None, device="cpu") -> InceptionFeatures:
    """The extractor, or one sentence on why it cannot be had and what to do."""
    return load_network(InceptionFeatures, weights_path, device, "Inception", WEIGHTS_FILE,
                        "torch-fidelity's releases", "metrics.inception_weights")

"""Random Inception weights for offline tests and benchmarks of the real loading and feature code."""

import torch
from torch import nn


def write_random_weights(path, seed: int = 0) -> str:
    """Write a weights file with torch-fidelity's Inception shapes and random values (its scores mean
    nothing) and return its path.

    He-scaled Gaussian convolutions keep the 2048-d features informative (PyTorch's default init
    makes them collapse, FID ~ 1e-12 between any two sets); BN layers stay at identity. The class
    layer is drawn so that the logits vary from image to image (``_spread_logits``): with a default
    one every image gets the same class distribution and every IS is 1. The network
    is built without its published weights by patching torch-fidelity's download and load (its
    names are pinned in tests/test_library_contract.py).
    """
    from unittest import mock

    from torch_fidelity import feature_extractor_inceptionv3 as module

    with mock.patch.object(module, "load_state_dict_from_url", return_value={}), \
            mock.patch.object(module.FeatureExtractorInceptionV3, "load_state_dict", return_value=None):
        network = module.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in network.modules():
            if isinstance(layer, nn.Conv2d):
                fan_in = layer.weight[0].numel()
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
        _spread_logits(network, generator)
    torch.save(network.state_dict(), path)
    return str(path)


def _spread_logits(network: nn.Module, generator: torch.Generator, images: int = 8) -> None:
    """Redraw the class layer orthogonal to the pool features' mean over random images (the features share a large
    positive mean, which would give every image the same class distribution), scaled so that each logit's spread
    over those images is 2: the IS of different images then differs from 1 and from each other's."""
    pixels = torch.randint(0, 256, (images, 3, 64, 64), generator=generator, dtype=torch.uint8)
    (features,) = network(pixels)
    mean = features.double().mean(0)
    direction = mean / mean.norm()
    weight = torch.randn(network.fc.weight.shape, generator=generator, dtype=torch.float64)
    weight -= torch.outer(weight @ direction, direction)
    spread = (features.double() @ weight.T).std(0).mean()
    network.fc.weight.copy_(weight * (2.0 / spread))

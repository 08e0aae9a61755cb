"""Spectral normalization against an SVD, and the sigma estimate exposed for logging."""

import torch
from torch import nn

from sngan_repro import build_models, compose
from sngan_repro.diagnostics import power_iteration_sigma, sn_estimate
from sngan_repro.normalizations import SpectralNormalization


def test_power_iteration_sigma_converges_to_the_svd_sigma():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3)
    exact = torch.linalg.matrix_norm(conv.weight.detach().reshape(16, -1), ord=2)
    layer = SpectralNormalization().wrap_weight_layer(conv)
    for _ in range(200):  # one power step per training-mode access
        _ = layer.weight
    assert torch.allclose(power_iteration_sigma(layer), exact, rtol=1e-4)
    assert torch.allclose(sn_estimate(layer.parametrizations.weight.original), exact)
    normalized = torch.linalg.matrix_norm(layer.weight.detach().reshape(16, -1), ord=2)
    assert abs(normalized.item() - 1) < 1e-3


def test_no_power_step_in_eval_mode():
    layer = SpectralNormalization().wrap_weight_layer(nn.Linear(5, 7)).eval()
    before = layer.parametrizations.weight[0]._u.clone()
    _ = layer.weight
    assert torch.equal(before, layer.parametrizations.weight[0]._u)


def test_layer_scales_name_every_normalized_layer():
    cfg = compose(["norm=sn", "arch.width=0.125"])
    _, discriminator = build_models(cfg)
    norm = SpectralNormalization()
    scales = norm.layer_scales(discriminator)
    assert len(scales) == 8 and "classifier" in scales
    assert all(s.ndim == 0 and s > 0 for s in scales.values())

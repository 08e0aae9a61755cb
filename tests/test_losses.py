"""Each loss against an independent formula (BCE-with-logits, explicit hinge / Wasserstein sums)."""

import pytest
import torch
import torch.nn.functional as F

from sngan_repro.losses import HingeLoss, NonSaturatingLoss, WassersteinLoss

torch.manual_seed(0)
D_REAL, D_FAKE = torch.randn(32) * 3, torch.randn(32) * 3


def test_nonsaturating_is_binary_cross_entropy():
    loss = NonSaturatingLoss()
    ones, zeros = torch.ones(32), torch.zeros(32)
    expected_d = F.binary_cross_entropy_with_logits(D_REAL, ones) + F.binary_cross_entropy_with_logits(D_FAKE, zeros)
    expected_g = F.binary_cross_entropy_with_logits(D_FAKE, ones)  # -log sigmoid(D(G(z)))
    torch.testing.assert_close(loss.discriminator(D_REAL, D_FAKE), expected_d)
    torch.testing.assert_close(loss.generator(D_FAKE), expected_g)


def test_hinge_matches_elementwise_definition():
    loss = HingeLoss()
    expected_d = sum(max(0.0, 1 - r) + max(0.0, 1 + f) for r, f in zip(D_REAL.tolist(), D_FAKE.tolist())) / 32
    assert loss.discriminator(D_REAL, D_FAKE).item() == pytest.approx(expected_d, rel=1e-6)
    assert loss.generator(D_FAKE).item() == pytest.approx(-sum(D_FAKE.tolist()) / 32, rel=1e-6)


def test_wasserstein_is_difference_of_means():
    loss = WassersteinLoss()
    expected = sum(D_FAKE.tolist()) / 32 - sum(D_REAL.tolist()) / 32
    assert loss.discriminator(D_REAL, D_FAKE).item() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert loss.generator(D_FAKE).item() == pytest.approx(-sum(D_FAKE.tolist()) / 32, rel=1e-6)

"""Each loss against an independent formula (BCE-with-logits, explicit hinge / Wasserstein sums)."""

import pytest
import torch
import torch.nn.functional as F

from sngan_repro.distributed import Ranks
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


def test_began_k_follows_its_update_and_stays_in_0_1_on_hand_made_energies():
    """k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1) from k_0 = 0, and M_global = L(x) +
    |gamma L(x) - L(G(z))| (Berthelot et al. 2017, Eq. 4 and Sec. 3.4.1), computed here with plain floats; the
    energies drive k over 1 and below 0 so that both clips act."""
    from sngan_repro.losses import BEGANLoss

    loss = BEGANLoss(gamma=0.5, lambda_k=0.4)
    energies = [(2.0, 0.2), (3.0, 0.1), (1.0, 0.3), (0.2, 2.5), (0.1, 3.0), (1.0, 0.4)]
    k = 0.0
    for real, fake in energies:
        d_real, d_fake = torch.full((4,), real), torch.tensor([fake - 0.1, fake, fake, fake + 0.1])
        assert loss.discriminator(d_real, d_fake).item() == pytest.approx(real - k * fake)
        assert loss.generator(d_fake).item() == pytest.approx(fake)
        loss.after_generator_update(d_real, d_fake, Ranks())  # one process: the batch's own means
        k = min(1.0, max(0.0, k + 0.4 * (0.5 * real - fake)))
        assert loss.k.item() == pytest.approx(k)
        assert loss.logged()["began/m_global"].item() == pytest.approx(real + abs(0.5 * real - fake))
    assert not HingeLoss().state_dict()  # a stateless loss adds nothing to checkpoints


def test_began_k_is_in_the_state_dict():
    from sngan_repro.losses import BEGANLoss

    loss = BEGANLoss()
    loss.after_generator_update(torch.tensor([2.0]), torch.tensor([0.0]), Ranks())
    restored = BEGANLoss()
    restored.load_state_dict(loss.state_dict())
    assert restored.k.item() == loss.k.item() == pytest.approx(0.001)


def _pulling_away_by_pairs(embeddings: torch.Tensor) -> float:
    """f_PT by a double loop over ordered pairs i != j."""
    count, total = embeddings.shape[0], 0.0
    for i in range(count):
        for j in range(count):
            if i != j:
                cosine = embeddings[i] @ embeddings[j] / (embeddings[i].norm() * embeddings[j].norm())
                total += cosine.item() ** 2
    return total / (count * (count - 1))


def test_pulling_away_term_is_the_mean_squared_cosine_over_pairs_and_ignores_each_embeddings_scale():
    """f_PT(S) = 1 / (N (N - 1)) sum_i sum_{j != i} (S_i . S_j / (|S_i| |S_j|))^2 (Zhao et al. 2017, Eq. 7), against
    a double loop over pairs in float64; scaling each embedding by its own factor (of either sign) changes nothing."""
    from sngan_repro.losses import pulling_away_term

    embeddings = torch.randn(7, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = _pulling_away_by_pairs(embeddings)
    assert pulling_away_term(embeddings).item() == pytest.approx(expected, rel=1e-12)
    scales = torch.tensor([3.0, -0.5, 10.0, 1e-3, -2.0, 7.0, 0.25], dtype=torch.float64)
    assert pulling_away_term(embeddings * scales[:, None]).item() == pytest.approx(expected, rel=1e-12)
    assert pulling_away_term(embeddings.reshape(7, 5, 1, 1)).item() == pytest.approx(expected, rel=1e-12)


def test_ebgan_hinge_and_generator_loss_match_their_formulas():
    """L_D = mean D(x) + mean [m - D(G(z))]^+, L_G = mean D(G(z)) + lambda_PT f_PT(S) (Zhao et al. 2017, Eqs. 1-2,
    7), with sums over the batch written out; the fake energies straddle the margin so that the hinge both acts and
    is cut off."""
    from sngan_repro.losses import EBGANLoss

    loss = EBGANLoss(margin=2.0, pulling_away=0.3)
    d_real, d_fake = D_REAL.abs(), D_FAKE.abs()
    assert (d_fake < 2).any() and (d_fake > 2).any()
    expected_d = sum(d_real.tolist()) / 32 + sum(max(0.0, 2.0 - f) for f in d_fake.tolist()) / 32
    assert loss.discriminator(d_real, d_fake).item() == pytest.approx(expected_d, rel=1e-6)
    embeddings = torch.randn(32, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    expected_g = sum(d_fake.tolist()) / 32 + 0.3 * _pulling_away_by_pairs(embeddings)
    assert loss.generator(d_fake.double(), embeddings).item() == pytest.approx(expected_g, rel=1e-6)
    assert EBGANLoss.reads_embeddings and not HingeLoss.reads_embeddings


@pytest.mark.parametrize(("overrides", "message"), [
    (["arch=began"], r"^loss=nonsat reads a critic's scores, and arch=began's critic outputs reconstruction "
                     r"energies; "),
    (["loss=began"], r"^loss=began reads a critic's reconstruction energies, and arch=sngan_cnn's critic outputs "
                     r"scores; "),
    (["arch=ebgan", "loss=hinge"], r"^loss=hinge reads a critic's scores, and arch=ebgan's critic outputs "),
    (["arch=ebgan", "loss=ebgan", "train.g_batch_size=1"],
     r"^loss=ebgan's pulling-away term compares pairs of generated images; train.g_batch_size=1 must be at least 2"),
])
def test_a_loss_is_refused_a_critic_whose_output_it_cannot_read(overrides, message):
    from sngan_repro import compose, validate
    from sngan_repro.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        validate(compose(overrides))


@pytest.mark.parametrize(("method", "distance"), [("began", F.l1_loss), ("ebgan", F.mse_loss)])
def test_autoencoder_critic_outputs_each_images_reconstruction_energy_and_refuses_a_normalization(method, distance):
    """BEGAN: L(v) = mean over pixels of |v - D(v)| (Berthelot et al. 2017, Eq. 1 with eta = 1); EBGAN: D(v) = mean
    over pixels of (Dec(Enc(v)) - v)^2 (Zhao et al. 2017, Sec. 2.3); per image, against torch's losses; the
    embeddings are the encoder's outputs, one row per image."""
    from sngan_repro import compose
    from sngan_repro.errors import ConfigError
    from sngan_repro.models import build_models

    cfg = compose([f"arch={method}", f"loss={method}", "norm=none", "arch.width=0.125", "dataset.image_size=24"])
    _, critic = build_models(cfg)
    images = torch.rand(3, 3, 24, 24) * 2 - 1
    encoded = critic.encoder(images)
    expected = distance(critic.decoder(encoded), images, reduction="none").mean(dim=(1, 2, 3))
    energies, embeddings = critic.energies_and_embeddings(images)
    torch.testing.assert_close(critic(images), expected)
    torch.testing.assert_close(energies, expected)
    torch.testing.assert_close(embeddings, encoded.flatten(1))
    with pytest.raises(ConfigError, match=rf"^{method.upper()}'s autoencoder critic takes no critic normalization "
                                          r".* got SpectralNormalization: use norm=none\.$"):
        build_models(compose([f"arch={method}", f"loss={method}", "norm=sn"]))

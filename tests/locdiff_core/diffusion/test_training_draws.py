"""Random numbers drawn up front: a batch split into parts gives every example the loss it has
in the whole batch (what a distributed trainer relies on), and a generator still reproduces."""

import pytest
import torch

from locdiff_core.diffusion import DiffusionConfig, GaussianDiffusion, LossKind
from locdiff_core.geo import uniform_points
from locdiff_core.nn import CSUNet, CSUNetConfig
from locdiff_core.shdd import KLEstimator

L = 5


def _batch(n: int = 12):
    g = torch.Generator().manual_seed(0)
    lat, lon = uniform_points(n, generator=g)
    cond = torch.randn(n, 8, generator=g)
    torch.manual_seed(0)
    model = CSUNet(CSUNetConfig(degree=L, dim_cond=8, widths=(16,), dim_bottleneck=8, dropout=0))
    return model, lat, lon, cond


@pytest.mark.parametrize(
    "config",
    [
        DiffusionConfig(num_anchors=64, cond_drop_prob=0.3),
        DiffusionConfig(num_anchors=64, cond_noise=1.0),
        DiffusionConfig(num_anchors=64, kl_estimator=KLEstimator.UNIFORM),
        DiffusionConfig(loss=LossKind.MSE),
    ],
)
def test_rows_of_the_draws_give_each_example_its_whole_batch_loss(config):
    model, lat, lon, cond = _batch()
    diffusion = GaussianDiffusion(config)
    draws = diffusion.draw(len(lat), L, dim_cond=8, generator=torch.Generator().manual_seed(5))
    whole = diffusion.training_losses(model, lat, lon, cond, L, draws=draws)
    # Interleaved parts, as process r of 3 holds the positions r, r + 3, ...
    parts = torch.zeros_like(whole)
    for r in range(3):
        idx = torch.arange(r, len(lat), 3)
        parts[idx] = diffusion.training_losses(
            model, lat[idx], lon[idx], cond[idx], L, draws=draws.rows(idx)
        )
    torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-6)
    assert bool(torch.isfinite(whole).all())


def test_a_generator_reproduces_the_losses_and_draws_are_checked():
    model, lat, lon, cond = _batch()
    diffusion = GaussianDiffusion(DiffusionConfig(num_anchors=64))
    a = diffusion.training_losses(model, lat, lon, cond, L, torch.Generator().manual_seed(1))
    b = diffusion.training_losses(model, lat, lon, cond, L, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    draws = diffusion.draw(len(lat) - 1, L)
    with pytest.raises(ValueError, match="draw with the batch's size"):
        diffusion.training_losses(model, lat, lon, cond, L, draws=draws)


def test_condition_noise_keeps_each_norm_and_sets_the_cosine():
    diffusion = GaussianDiffusion(DiffusionConfig(cond_noise=1.0))
    g = torch.Generator().manual_seed(2)
    cond = torch.randn(400, 512, generator=g) * torch.rand(400, 1, generator=g) * 3
    noisy = diffusion.noisy_condition(cond, torch.randn(cond.shape, generator=g))
    torch.testing.assert_close(noisy.norm(dim=1), cond.norm(dim=1))
    cosine = torch.nn.functional.cosine_similarity(noisy, cond, dim=1)
    assert abs(float(cosine.mean()) - 2**-0.5) < 0.01  # 1 / sqrt(1 + 1)


def test_condition_noise_is_drawn_and_used_only_when_asked():
    model, lat, lon, cond = _batch()
    plain = GaussianDiffusion(DiffusionConfig(num_anchors=64))
    noisy = GaussianDiffusion(DiffusionConfig(num_anchors=64, cond_noise=0.5))
    a = plain.draw(len(lat), L, generator=torch.Generator().manual_seed(5))
    b = noisy.draw(len(lat), L, dim_cond=8, generator=torch.Generator().manual_seed(5))
    assert a.cond_noise is None and b.cond_noise.shape == (len(lat), 8)
    torch.testing.assert_close(a.noise, b.noise)  # the other draws are unchanged
    model.eval()
    with_noise = noisy.training_losses(model, lat, lon, cond, L, draws=b)
    without = plain.training_losses(model, lat, lon, cond, L, draws=a)
    assert not torch.allclose(with_noise, without)
    with pytest.raises(ValueError, match="dim_cond"):
        noisy.draw(len(lat), L)
    with pytest.raises(ValueError, match="condition's shape"):
        noisy.training_losses(model, lat, lon, cond, L, draws=a)

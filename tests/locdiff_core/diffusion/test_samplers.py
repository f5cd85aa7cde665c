"""The sampler contract, DDIM determinism, and DDPM/DDIM agreement on a Gaussian toy problem
whose exact denoiser is known."""

import math

import pytest
import torch
from torch import nn

from locdiff_core.diffusion import (
    CancelledError,
    DDIMSampler,
    DDPMSampler,
    DiffusionConfig,
    GaussianDiffusion,
    sample,
)


class GaussianOracle(nn.Module):
    """The exact x0-predictor E[x0 | x_t] for x0 ~ N(mu, s^2 I)."""

    def __init__(self, diffusion: GaussianDiffusion, mu: torch.Tensor, s: float):
        super().__init__()
        self.diffusion, self.mu, self.s = diffusion, mu, s
        self.config = type("C", (), {"dim_latent": mu.numel()})()

    def forward(self, x, t, cond, drop_cond=None):
        abar = self.diffusion.alphas_cumprod[t].to(x.dtype)[:, None]
        gain = abar.sqrt() * self.s**2 / (abar * self.s**2 + 1 - abar)
        return self.mu + gain * (x - abar.sqrt() * self.mu)


@pytest.fixture
def toy():
    diffusion = GaussianDiffusion(DiffusionConfig(num_steps=100))
    mu = torch.tensor([2.0, -1.0, 0.5])
    return diffusion, GaussianOracle(diffusion, mu, 0.3), mu


def test_timesteps_contract(toy):
    diffusion, _, _ = toy
    sampler = DDIMSampler(diffusion.alphas_cumprod)
    with pytest.raises(RuntimeError, match="set_timesteps"):
        _ = sampler.timesteps
    sampler.set_timesteps(20)
    ts = sampler.timesteps.tolist()
    assert ts[0] == 99 and ts[-1] == 0 and len(ts) == 20 and ts == sorted(ts, reverse=True)
    with pytest.raises(ValueError, match="between 1 and the 100"):
        sampler.set_timesteps(101)


def test_ddim_eta0_is_deterministic(toy):
    diffusion, oracle, _ = toy
    sampler = DDIMSampler(diffusion.alphas_cumprod, eta=0.0)
    sampler.set_timesteps(10)
    x = torch.randn(4, 3)
    x0, eps = diffusion.split_output(oracle(x, torch.full((4,), 99), None), x, torch.full((4,), 99))
    a = sampler.step(x0, eps, 99, x, torch.Generator().manual_seed(1))
    b = sampler.step(x0, eps, 99, x, torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    cond = torch.zeros(64, 1)
    runs = [
        sample(
            oracle,
            diffusion,
            sampler,
            cond,
            num_steps=10,
            generator=torch.Generator().manual_seed(5),
        )
        for _ in range(2)
    ]
    assert torch.equal(*runs)


def _draw(diffusion, oracle, cls, steps):
    return sample(
        oracle,
        diffusion,
        cls(diffusion.alphas_cumprod),
        torch.zeros(20000, 1),
        num_steps=steps,
        generator=torch.Generator().manual_seed(0),
    )


def test_ddpm_and_ddim_reach_the_data_distribution():
    # With T = 1000 small steps both samplers reproduce N(mu, s^2) with the exact denoiser.
    diffusion = GaussianDiffusion(DiffusionConfig(num_steps=1000))
    mu = torch.tensor([2.0, -1.0, 0.5])
    oracle = GaussianOracle(diffusion, mu, 0.3)
    for cls, steps in ((DDPMSampler, 1000), (DDIMSampler, 500)):
        x = _draw(diffusion, oracle, cls, steps)
        assert torch.allclose(x.mean(0), mu, atol=0.02)
        assert torch.allclose(x.std(0), torch.full((3,), 0.3), atol=0.01)


def test_ddpm_and_ddim_agree_at_the_papers_100_steps(toy):
    # At T = 100 both under-disperse a little (the mean-only posterior of a coarse schedule),
    # by the same amount for DDPM-100 and DDIM-50.
    diffusion, oracle, mu = toy
    assert torch.allclose(_draw(diffusion, oracle, DDPMSampler, 100).mean(0), mu, atol=0.02)
    a = _draw(diffusion, oracle, DDPMSampler, 100)
    b = _draw(diffusion, oracle, DDIMSampler, 50)
    assert torch.allclose(a.mean(0), b.mean(0), atol=0.02)
    assert torch.allclose(a.std(0), b.std(0), atol=0.01)
    assert ((a.std(0) - 0.3).abs() < 0.04).all()


def test_progress_and_cancel(toy):
    diffusion, oracle, _ = toy
    seen, calls = [], []

    def run(sampler, steps, **kwargs):
        return sample(oracle, diffusion, sampler, torch.zeros(2, 1), num_steps=steps, **kwargs)

    run(DDIMSampler(diffusion.alphas_cumprod), 5, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(i, 5) for i in range(1, 6)]
    with pytest.raises(CancelledError):
        run(
            DDPMSampler(diffusion.alphas_cumprod),
            50,
            cancel=lambda: bool(calls.append(1)) or len(calls) > 3,
        )
    assert len(calls) == 4


def test_linear_schedule_keeps_the_signal_small_at_the_end():
    d = GaussianDiffusion(DiffusionConfig(num_steps=100))
    assert float(d.alphas_cumprod[-1]) < 1e-3 and float(d.alphas_cumprod[0]) > 0.99
    assert math.isclose(DiffusionConfig().latent_scale, math.sqrt(4 * math.pi))


def test_eps_prediction_requires_mse():
    from locdiff_core.diffusion import LossKind, Prediction

    with pytest.raises(ValueError, match="noise prediction"):
        GaussianDiffusion(DiffusionConfig(prediction=Prediction.EPS, loss=LossKind.SHDD_KL))


class DropAware(nn.Module):
    """Predicts x0 = 1 with the condition and x0 = 0 without it."""

    config = type("C", (), {"dim_latent": 2})()

    def forward(self, x, t, cond, drop_cond=None):
        keep = torch.ones(len(x), dtype=torch.bool) if drop_cond is None else ~drop_cond
        return keep[:, None].to(x.dtype).expand(-1, 2)


def test_classifier_free_guidance_extrapolates_from_unconditional_to_conditional(toy):
    diffusion = toy[0]
    for w in (1.0, 3.0):
        x = sample(
            DropAware(),
            diffusion,
            DDIMSampler(diffusion.alphas_cumprod),
            torch.zeros(4, 1),
            num_steps=1,
            guidance_scale=w,
        )
        assert torch.allclose(x, torch.full((4, 2), w))  # x0_u + w (x0_c - x0_u) = w

"""SHDD-KL (paper and importance-sampled), cosine and MSE losses."""

import pytest
import torch

from locdiff_core import shdd
from locdiff_core.geo import great_circle_km

F64 = torch.float64
LAT = torch.tensor([43.47, -20.0, 60.0, 5.0], dtype=F64)
LON = torch.tensor([11.88, 140.0, -100.0, 30.0], dtype=F64)


@pytest.mark.parametrize("estimator", ["uniform", "importance"])
@pytest.mark.parametrize("direction", ["pred_to_target", "target_to_pred"])
def test_kl_is_zero_at_the_target_and_positive_elsewhere(estimator, direction):
    g = torch.Generator().manual_seed(0)
    e = shdd.encode(LAT, LON, 23)
    zero = shdd.kl_loss(e, LAT, LON, estimator=estimator, direction=direction, generator=g)
    assert torch.allclose(zero, torch.zeros(4, dtype=F64), atol=1e-9)
    off = shdd.encode(LAT + 5.0, LON, 23)
    assert bool((shdd.kl_loss(off, LAT, LON, estimator=estimator, generator=g) > 0.1).all())


@pytest.mark.parametrize("estimator", ["uniform", "importance"])
def test_finite_values_and_gradients_at_degree_200_float32(estimator):
    e = torch.randn(3, 201**2) * 0.05
    e[0] = shdd.encode(torch.tensor([30.0]), torch.tensor([40.0]), 200)[0]
    e.requires_grad_(True)
    lat, lon = torch.tensor([30.0, -89.99, 0.0]), torch.tensor([40.0, 0.0, 180.0])
    loss = shdd.kl_loss(e, lat, lon, estimator=estimator, num_local=64)
    assert loss.dtype == torch.float32 and bool(torch.isfinite(loss).all())
    loss.sum().backward()
    assert bool(torch.isfinite(e.grad).all())


def directional_derivative(estimator, seed, L=47, offset_km=60.0):
    """d loss / d(step of the predicted point towards the truth), at 60 km from it."""
    g = torch.Generator().manual_seed(seed)
    off_deg = offset_km / 111.2
    e = shdd.encode(LAT + off_deg, LON, L).requires_grad_(True)
    shdd.kl_loss(e, LAT, LON, estimator=estimator, generator=g).sum().backward()
    toward = (shdd.encode(LAT + off_deg - 0.01, LON, L) - e.detach()) / 0.01
    return (e.grad * toward).sum(1)


def test_importance_estimator_resolves_sub_anchor_spacing():
    """60 km is far below the ~500 km spacing of 2048 uniform anchors (L=47: peak 20 km)."""
    derivs = torch.stack([directional_derivative("importance", s) for s in range(8)])
    assert bool((derivs < 0).all()), "moving towards the truth must lower the loss"
    uniform = torch.stack([directional_derivative("uniform", s) for s in range(8)])
    # The paper's estimator mostly sees nothing: unless an anchor happens to fall within the
    # target's 20 km peak, its slope vanishes (the median draw is orders of magnitude weaker).
    assert float(uniform.abs().median()) < 0.01 * float(derivs.abs().min())


def test_gradient_step_moves_the_mode_towards_the_truth():
    L = 47
    off_deg = 60.0 / 111.2
    start = shdd.encode(LAT + off_deg, LON, L)
    e = start.clone().requires_grad_(True)
    opt = torch.optim.SGD([e], lr=0.05)
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        opt.zero_grad()
        shdd.kl_loss(e, LAT, LON, estimator="importance", generator=g).sum().backward()
        opt.step()
    before = great_circle_km(*shdd.decode(start)[:2], LAT, LON)
    after = great_circle_km(*shdd.decode(e.detach())[:2], LAT, LON)
    assert bool((after < 0.8 * before).all()), (before, after)


def test_cosine_and_mse():
    e = shdd.encode(LAT, LON, 15)
    assert torch.allclose(shdd.cosine_loss(e, LAT, LON), torch.zeros(4, dtype=F64), atol=1e-12)
    assert torch.allclose(shdd.mse_loss(e, LAT, LON), torch.zeros(4, dtype=F64), atol=1e-20)
    far = shdd.encode(-LAT, LON + 90, 15)
    assert bool((shdd.cosine_loss(far, LAT, LON) > 0.5).all())
    assert bool((shdd.mse_loss(far, LAT, LON) > 0).all())


def test_bad_input():
    e = shdd.encode(LAT, LON, 10)
    with pytest.raises(ValueError, match="4 rows but 3"):
        shdd.kl_loss(e, LAT[:3], LON[:3])
    with pytest.raises(ValueError, match="num_anchors"):
        shdd.kl_loss(e, LAT, LON, num_anchors=0)
    with pytest.raises(ValueError):
        shdd.kl_loss(e, LAT, LON, estimator="nonsense")
    with pytest.raises(ValueError, match=r"outside \[-90, 90\]"):
        shdd.mse_loss(e, LAT + 100, LON)

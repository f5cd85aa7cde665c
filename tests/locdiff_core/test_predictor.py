"""The predictor's summary of samples, and its contract on a small random model."""

import math

import numpy as np
import pytest
import torch

from locdiff_core.checkpoint import CheckpointConfig
from locdiff_core.diffusion import CancelledError, DiffusionConfig, SamplerKind
from locdiff_core.geo import exp_map, great_circle_km, latlon_to_xyz, tangent_frame, xyz_to_latlon
from locdiff_core.nn import CSUNet, CSUNetConfig
from locdiff_core.predictor import Predictor, PredictorConfig, summarize_samples


def scatter(lat, lon, n, km, seed):
    g = torch.Generator().manual_seed(seed)
    u = latlon_to_xyz(torch.tensor([lat] * n, dtype=torch.float64), torch.tensor([lon] * n))
    e1, e2 = tangent_frame(u)
    xy = torch.randn(n, 2, generator=g, dtype=torch.float64) * km / 6371.0
    return xyz_to_latlon(exp_map(u, e1, e2, xy[:, 0], xy[:, 1]))


def test_best_guess_survives_a_bimodal_posterior():
    # 9 samples around Lisbon, 7 around Santiago de Chile: the paper's centre falls far from
    # both (in the South Atlantic); the best guess stays in Portugal.
    a_lat, a_lon = scatter(38.72, -9.14, 9, 50.0, 0)
    b_lat, b_lon = scatter(-33.45, -70.67, 7, 50.0, 1)
    lat, lon = torch.cat((a_lat, b_lat)), torch.cat((a_lon, b_lon))
    best, centre, cands, r50, r90 = summarize_samples(lat, lon, 250.0, 3)
    assert float(great_circle_km(*best, 38.72, -9.14)) < 60.0
    assert float(great_circle_km(*centre, 38.72, -9.14)) > 3000.0
    assert float(great_circle_km(*centre, -33.45, -70.67)) > 3000.0
    assert [c.share for c in cands] == [9 / 16, 7 / 16]
    assert float(great_circle_km(cands[1].lat, cands[1].lon, -33.45, -70.67)) < 60.0
    assert r50 < 150.0 and r90 > 8000.0  # 90% of the samples reach across to Chile


def test_radii_are_nearest_rank_quantiles():
    lat = torch.zeros(4, dtype=torch.float64)
    lon = torch.tensor([0.0, 0.1, 0.2, 0.3], dtype=torch.float64)
    best, _, cands, r50, r90 = summarize_samples(lat, lon, 100.0, 3)
    d = great_circle_km(best[0], best[1], lat, lon).sort().values
    assert math.isclose(r50, float(d[1]), rel_tol=1e-9)
    assert math.isclose(r90, float(d[3]), rel_tol=1e-9)
    assert len(cands) == 1 and cands[0].share == 1.0


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    cfg = CSUNetConfig(degree=8, dim_cond=6, widths=(32,), dim_bottleneck=16, dropout=0.0)
    return Predictor(CSUNet(cfg), CheckpointConfig(cfg, DiffusionConfig(num_steps=50)))


def test_predictions_have_every_field(predictor):
    emb = np.random.default_rng(0).normal(size=(3, 6)).astype(np.float32)
    config = PredictorConfig(num_samples=5, num_steps=4, batch_size=2)
    preds = predictor.predict(emb, config, density_size=(18, 36))
    assert len(preds) == 3
    for p in preds:
        assert p.samples.shape == (5, 2) and np.isfinite(p.samples).all()
        assert 1 <= len(p.candidates) <= 3
        assert math.isclose(sum(c.share for c in p.candidates), 1.0) or len(p.candidates) == 3
        assert 0 <= p.radius50_km <= p.radius90_km
        assert p.density.shape == (18, 36) and (p.density >= 0).all()
        # The mixture density integrates to about one over the sphere.
        lat = np.deg2rad(90 - (np.arange(18) + 0.5) * 10)
        mass = (p.density * np.cos(lat)[:, None]).sum() * np.deg2rad(10) ** 2
        assert abs(mass - 1.0) < 0.1


def test_same_seed_same_answer_and_order_is_kept(predictor):
    emb = np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32)
    config = PredictorConfig(num_samples=3, num_steps=3, batch_size=3, seed=7)
    a = [i for i, _ in predictor.iter_predict(emb, config)]
    assert a == [0, 1, 2, 3]
    p1 = predictor.predict(emb, config)
    p2 = predictor.predict(emb, config)
    assert all(np.array_equal(x.samples, y.samples) for x, y in zip(p1, p2, strict=True))
    ddpm = predictor.predict(emb, PredictorConfig(num_samples=3, sampler=SamplerKind.DDPM, seed=7))
    assert len(ddpm) == 4


def test_progress_cancel_and_bad_input(predictor):
    emb = np.zeros((5, 6), dtype=np.float32)
    seen = []
    predictor.predict(
        emb,
        PredictorConfig(num_samples=2, num_steps=3, batch_size=2),
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen[-1] == (9, 9) and len(seen) == 9
    with pytest.raises(CancelledError):
        predictor.predict(emb, PredictorConfig(num_samples=2, num_steps=3), cancel=lambda: True)
    with pytest.raises(ValueError, match=r"shape \[N, 6\]"):
        predictor.predict(np.zeros((2, 5)))
    bad = emb.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="row 3"):
        predictor.predict(bad)


def test_the_best_guess_is_the_mode_of_the_networks_posterior_or_the_densest_cluster(predictor):
    from locdiff_core import shdd
    from locdiff_core.predictor import BestGuess

    emb = np.random.default_rng(2).normal(size=(5, 6)).astype(np.float32)
    base = PredictorConfig(num_samples=6, num_steps=4, batch_size=2, seed=3)
    modes = predictor.predict(emb, base, density_size=(18, 36))
    cluster = predictor.predict(
        emb,
        PredictorConfig(**{**base.__dict__, "best_guess": BestGuess.CLUSTER}),
        density_size=(18, 36),
    )
    # The posterior draws its own noise: the samples are the same whichever guess is asked for.
    for m, c in zip(modes, cluster, strict=True):
        assert np.array_equal(m.samples, c.samples) and m.candidates == c.candidates
        assert c.best == (c.candidates[0].lat, c.candidates[0].lon)
    # The mode, recomputed here: x0 at t = T - 1 from the seed + 1 noise stream, averaged
    # over the K draws, decoded.
    assert any(m.best != c.best for m, c in zip(modes, cluster, strict=True))
    diffusion, model = predictor.diffusion, predictor.model
    g = torch.Generator().manual_seed(4)
    for start in range(0, 5, 2):  # one noise draw per batch of the predictor
        cond = torch.from_numpy(emb[start : start + 2])
        rows = cond.repeat_interleave(6, 0)  # K = 6 noise draws per photo, averaged
        x = torch.randn(len(rows), model.config.dim_latent, generator=g)
        t = torch.full((len(rows),), 49)
        with torch.no_grad():
            x0, _ = diffusion.split_output(model(x, t, rows), x, t)
        x0 = x0.view(len(cond), 6, -1).mean(1)
        coeffs = diffusion.to_coeffs(x0).double()
        lat, lon, _ = shdd.decode(coeffs, with_mass=False)
        posterior = shdd.density_grid(coeffs, 18, 36).numpy()
        for i in range(len(cond)):
            # Equal to a metre (the decoder refines iteratively).
            assert modes[start + i].best == pytest.approx((float(lat[i]), float(lon[i])), abs=1e-5)
            # The map shows the density the guess is the mode of; with cluster, the samples'.
            np.testing.assert_allclose(modes[start + i].density, posterior[i], rtol=1e-6)
            assert not np.allclose(cluster[start + i].density, posterior[i], rtol=1e-3)
    # The radii count the samples around the mode.
    for m in modes:
        d = great_circle_km(
            torch.tensor(m.best[0]), torch.tensor(m.best[1]),
            torch.from_numpy(m.samples[:, 0]), torch.from_numpy(m.samples[:, 1]),
        ).sort().values  # fmt: skip
        assert abs(m.radius50_km - float(d[2])) < 1e-3  # a metre: two distance formulas

"""CS-UNet shapes, the timestep embedding and the condition path."""

import dataclasses

import torch

from locdiff_core.nn import CSUNet, CSUNetConfig, timestep_embedding


def test_timestep_embedding_is_sinusoidal_and_distinct():
    t = torch.arange(100)
    emb = timestep_embedding(t, 64)
    assert emb.shape == (100, 64)
    assert torch.allclose(emb[0, :32], torch.ones(32)) and torch.allclose(
        emb[0, 32:], torch.zeros(32)
    )
    assert torch.allclose(emb.norm(dim=1), torch.full((100,), 32**0.5))  # cos^2 + sin^2 per pair
    assert torch.cdist(emb, emb).add(torch.eye(100)).min() > 0.1
    assert timestep_embedding(t, 7).shape == (100, 7)


def test_csunet_shapes_and_skips():
    cfg = CSUNetConfig(degree=7, dim_cond=12, widths=(32, 16), dim_bottleneck=8, dim_time=16)
    net = CSUNet(cfg)
    x = torch.randn(5, 64)
    out = net(x, torch.randint(100, (5,)), torch.randn(5, 12))
    assert out.shape == (5, 64)
    assert [b.proj_x.in_features for b in net.up] == [8 + 16, 16 + 32]
    assert net.out.in_features == 32


def test_condition_changes_output_and_dropping_uses_the_null_condition():
    torch.manual_seed(0)
    cfg = CSUNetConfig(degree=3, dim_cond=4, widths=(16,), dim_bottleneck=8, dropout=0.0)
    net = CSUNet(cfg).eval()
    x, t = torch.randn(2, 16), torch.tensor([3, 3])
    c = torch.randn(2, 4)
    assert not torch.allclose(net(x, t, c), net(x, t, c + 1.0))
    dropped = net(x, t, c, drop_cond=torch.tensor([True, False]))
    null = net(x, t, net.null_cond.detach().expand(2, -1))
    assert torch.allclose(dropped[0], null[0]) and torch.allclose(dropped[1], net(x, t, c)[1])


def test_a_network_with_rms_normed_conditions_ignores_their_scale_and_old_configs_do_not():
    torch.manual_seed(0)
    cfg = CSUNetConfig(degree=3, dim_cond=6, widths=(16,), dim_bottleneck=8, dropout=0.0)
    normed = CSUNet(dataclasses.replace(cfg, cond_rms_norm=True)).eval()
    x, t, c = torch.randn(3, 16), torch.tensor([1, 50, 99]), torch.randn(3, 6)
    torch.testing.assert_close(normed(x, t, c), normed(x, t, 40.0 * c))
    assert not torch.allclose(normed(x, t, c), normed(x, t, c.roll(1, dims=1)))
    plain = CSUNet(cfg).eval()
    assert not torch.allclose(plain(x, t, c), plain(x, t, 40.0 * c))
    # a config saved before the setting existed reads as without it
    raw = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "cond_rms_norm"}
    assert CSUNetConfig.from_dict(raw).cond_rms_norm is False

"""The C-Siren block: identity modulation at start, sine activation."""

import torch

from locdiff_core.nn import CSirenBlock


def test_block_modulation_starts_as_identity_and_uses_sine():
    blk = CSirenBlock(6, 5, 3, 4, dropout=0.0, w0=1.0)
    x, t, c = torch.randn(2, 6), torch.randn(2, 4), torch.randn(2, 3)
    expect = torch.sin(blk.ff(blk.proj_x(x) + blk.proj_c(c)))
    assert torch.allclose(blk(x, t, c), expect, atol=1e-6)
    assert blk(x, t, c).abs().max() <= 1.0

"""C-Siren blocks (paper Sec. 4.5, Fig. 2a).

A C-Siren block maps a latent ``x`` under a timestep embedding ``t_emb`` and a condition ``c``
(the image embedding)::

    h = W_x x                                   feed-forward projection of the latent
    h = (1 + alpha_t) * h + eps_t               scale and shift from the timestep embedding
    h = h + W_c c                               the projected condition is added
    out = dropout(sin(w0 * W_f h))              feed-forward layer, sine activation (SIREN)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _siren_init(linear: nn.Linear, w0: float) -> None:
    """SIREN initialisation: uniform in +-sqrt(6 / fan_in) / w0 keeps sine inputs in range."""
    bound = math.sqrt(6.0 / linear.in_features) / w0
    nn.init.uniform_(linear.weight, -bound, bound)
    nn.init.uniform_(linear.bias, -bound, bound)


class CSirenBlock(nn.Module):
    """One conditional SIREN block (Fig. 2a): ``[B, dim_in] -> [B, dim_out]``."""

    def __init__(
        self, dim_in: int, dim_out: int, dim_cond: int, dim_time: int, dropout: float, w0: float
    ) -> None:
        super().__init__()
        self.w0 = w0
        self.proj_x = nn.Linear(dim_in, dim_out)
        self.proj_c = nn.Linear(dim_cond, dim_out)
        self.time = nn.Linear(dim_time, 2 * dim_out)  # alpha_t and eps_t
        self.ff = nn.Linear(dim_out, dim_out)
        self.dropout = nn.Dropout(dropout)
        _siren_init(self.ff, w0)
        nn.init.zeros_(self.time.weight)  # start as the identity modulation
        nn.init.zeros_(self.time.bias)

    def forward(self, x: Tensor, t_emb: Tensor, c: Tensor) -> Tensor:
        h = self.proj_x(x)
        alpha, eps = self.time(t_emb).chunk(2, dim=-1)
        h = (1.0 + alpha) * h + eps
        h = h + self.proj_c(c)
        return self.dropout(torch.sin(self.w0 * self.ff(h)))

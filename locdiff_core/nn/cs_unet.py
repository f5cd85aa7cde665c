"""The CS-UNet denoiser (paper Sec. 4.5, Fig. 2b) and its config.

The CS-UNet stacks C-Siren blocks (:mod:`siren`) that narrow from the SHDD dimension ``(L+1)^2``
to a bottleneck and widen back, with UNet skip connections (the widening blocks also see the
narrowing block of the same width), and a final linear layer back to ``(L+1)^2``. Every block
sees the sinusoidal embedding of the timestep passed through a small MLP, and the condition.

With ``cond_rms_norm`` each condition is first rescaled to a root mean square of 1 per value.
A unit-norm image embedding of C values has values of about ``1 / sqrt(C)`` (0.036 for CLIP
ViT-L/14), so at initialisation its projection in every block is some 20 times smaller than
the latent's (which has unit variance), and Adam at 1e-4 needs thousands of steps to grow the
projection's weights before the condition counts; rescaled, it counts from the first step.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from locdiff_core.config_fields import Flag, Int, Ints, Real, check_fields, from_fields
from locdiff_core.nn.siren import CSirenBlock

# Upper bounds that keep a config (from a checkpoint, or typed on a command line) from asking
# for an unbounded allocation when the network is built. They sit far above the paper's
# models (L up to 47-64, widths 1024/512/256, a bottleneck of 32-128, CLIP embeddings of
# 512-1280 values): L = 200 is where float32 harmonics stop (shdd.harmonics), a latent of
# (200+1)^2 = 40,401 values; with 8192-wide layers in 16 blocks the worst case is bounded (tens
# of GB). A checkpoint's network is allocated only once its file is seen to hold those shapes.
MAX_DEGREE = 200
MAX_WIDTH = 8192
MAX_DEPTH = 16  # narrowing blocks before the bottleneck


@dataclass(frozen=True)
class CSUNetConfig:
    """Widths and regularisation of a :class:`CSUNet`; stored in every checkpoint."""

    degree: int  # SHDD degree L; the latent has (L+1)^2 values
    dim_cond: int  # image-embedding width (768 for CLIP ViT-L/14)
    widths: tuple[int, ...] = (1024, 512, 256)  # narrowing widths before the bottleneck
    dim_bottleneck: int = 128  # paper: 32 or 128
    dim_time: int = 128
    dropout: float = 0.3
    w0: float = 1.0  # SIREN frequency of the sine activations
    # Classifier-free guidance: a learned "no condition" embedding replaces c when dropped.
    learn_null_condition: bool = True
    cond_rms_norm: bool = False  # rescale each condition to RMS 1 (module docstring)

    @property
    def dim_latent(self) -> int:
        return (self.degree + 1) ** 2

    def validate(self) -> None:
        check_fields(self, CSUNET_FIELDS)

    @classmethod
    def from_dict(cls, raw: object, where: str = "model") -> CSUNetConfig:
        """The config from its JSON object, every field checked (``ValueError`` names
        ``where.field`` and what it must be)."""
        return from_fields(cls, raw, CSUNET_FIELDS, where)


_WIDTH = Int(1, MAX_WIDTH)
CSUNET_FIELDS = {
    "degree": Int(0, MAX_DEGREE),
    "dim_cond": _WIDTH,
    "widths": Ints(_WIDTH, 1, MAX_DEPTH),
    "dim_bottleneck": _WIDTH,
    "dim_time": _WIDTH,
    "dropout": Real(0.0, 1.0, open_hi=True),
    "w0": Real(0.0, 1000.0, open_lo=True),  # the SIREN paper uses 30; the default is 1
    "learn_null_condition": Flag(),
    "cond_rms_norm": Flag(),
}


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal embedding ``[B, dim]`` of integer (or real) timesteps ``t [B]``."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat((torch.cos(args), torch.sin(args)), dim=-1)
    if dim % 2:
        emb = torch.cat((emb, torch.zeros_like(emb[:, :1])), dim=-1)
    return emb


class CSUNet(nn.Module):
    """The conditional Siren UNet (Fig. 2b): ``(x_t [B, D], t [B], c [B, C]) -> [B, D]``."""

    def __init__(self, config: CSUNetConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        c = config
        self.time_mlp = nn.Sequential(
            nn.Linear(c.dim_time, c.dim_time), nn.SiLU(), nn.Linear(c.dim_time, c.dim_time)
        )

        def block(dim_in: int, dim_out: int) -> CSirenBlock:
            return CSirenBlock(dim_in, dim_out, c.dim_cond, c.dim_time, c.dropout, c.w0)

        dims = (c.dim_latent, *c.widths)
        self.down = nn.ModuleList(block(a, b) for a, b in itertools.pairwise(dims))
        self.mid = block(dims[-1], c.dim_bottleneck)
        ups, width = [], c.dim_bottleneck
        for skip in reversed(c.widths):
            ups.append(block(width + skip, skip))
            width = skip
        self.up = nn.ModuleList(ups)
        self.out = nn.Linear(width, c.dim_latent)
        self.null_cond = nn.Parameter(torch.zeros(c.dim_cond), requires_grad=c.learn_null_condition)

    def forward(
        self, x: Tensor, t: Tensor, cond: Tensor, drop_cond: Tensor | None = None
    ) -> Tensor:
        """``drop_cond [B]`` (bool) replaces those rows' condition by the null condition."""
        if self.config.cond_rms_norm:
            rms = cond.norm(dim=-1, keepdim=True) / math.sqrt(cond.shape[-1])
            cond = cond / rms.clamp_min(1e-12)
        if drop_cond is not None:
            cond = torch.where(drop_cond[:, None], self.null_cond.to(cond.dtype), cond)
        t_emb = self.time_mlp(timestep_embedding(t, self.config.dim_time).to(x.dtype))
        skips = []
        h = x
        for blk in self.down:
            h = blk(h, t_emb, cond)
            skips.append(h)
        h = self.mid(h, t_emb, cond)
        for blk in self.up:
            h = blk(torch.cat((h, skips.pop()), dim=-1), t_emb, cond)
        return self.out(h)

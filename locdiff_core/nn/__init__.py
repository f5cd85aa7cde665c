"""Networks of the LocDiffusion model (paper Sec. 4.5, Fig. 2)."""

from locdiff_core.nn.cs_unet import CSUNet, CSUNetConfig, timestep_embedding
from locdiff_core.nn.siren import CSirenBlock

__all__ = ["CSUNet", "CSUNetConfig", "CSirenBlock", "timestep_embedding"]

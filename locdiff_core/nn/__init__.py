"""Networks of the LocDiffusion model (paper Sec. 4.5, Fig. 2)."""

from locdiff_core.nn.siren import CSirenBlock, CSUNet, CSUNetConfig, timestep_embedding

__all__ = ["CSUNet", "CSUNetConfig", "CSirenBlock", "timestep_embedding"]

"""LocDiff Studio core: SHDD location representations and (later) the diffusion model.

The core imports neither Qt nor the ``app`` or ``trainer`` packages.
"""

__version__ = "0.1.0"

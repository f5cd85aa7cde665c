"""LocDiff Studio core: SHDD location representations, the diffusion model and the engines.

The core imports neither Qt nor the ``app`` or ``trainer`` packages.
"""

__version__ = "0.1.0"

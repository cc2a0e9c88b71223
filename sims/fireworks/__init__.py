"""A local stand-in for the Fireworks AI control plane (and a canned data plane), over real HTTP."""

from .config import SimConfig
from .faults import Faults
from .server import FireworksSimulator

__all__ = ["Faults", "FireworksSimulator", "SimConfig"]

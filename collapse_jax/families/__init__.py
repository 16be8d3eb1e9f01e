"""Model families: one file each."""

from ._base import AbstractFamily as AbstractFamily
from .gaussian import Gaussian as Gaussian
from .gaussian import GaussianParams as GaussianParams
from .gaussian import GaussianStats as GaussianStats

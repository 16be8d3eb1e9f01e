"""collapse_jax: a JAX Monte Carlo laboratory for model collapse.

Thousands to millions of recursive-fitting chains (a model refitted, generation
after generation, on samples from its own previous fit, with or without fresh real
data) run as one compiled program, beside the closed-form theory.

    import collapse_jax as cj
    res = cj.simulate(cj.Gaussian(), cj.Replace(), n=100, generations=100, chains=10_000, seed=0)
    res.summary()
"""

from . import data as data
from . import theory as theory
from ._rng import Stream as Stream
from ._version import __version__ as __version__
from .config import from_config as from_config
from .data import Empirical as Empirical
from .engine.compose import chain_fn as chain_fn
from .engine.shards import merge_shards as merge_shards
from .engine.simulate import simulate as simulate
from .engine.simulate import simulate_shard as simulate_shard
from .families import GLM as GLM
from .families import GMM as GMM
from .families import KDE as KDE
from .families import VAE as VAE
from .families import AbstractFamily as AbstractFamily
from .families import BayesGaussian as BayesGaussian
from .families import BayesGaussianParams as BayesGaussianParams
from .families import BayesLinearRegression as BayesLinearRegression
from .families import Bigram as Bigram
from .families import BLRParams as BLRParams
from .families import Categorical as Categorical
from .families import CouplingFlow as CouplingFlow
from .families import Downstream as Downstream
from .families import Gaussian as Gaussian
from .families import GaussianParams as GaussianParams
from .families import GMMParams as GMMParams
from .families import HuberLocation as HuberLocation
from .families import HuberRegression as HuberRegression
from .families import KDEParams as KDEParams
from .families import LabelChain as LabelChain
from .families import LabelledInputs as LabelledInputs
from .families import LabelTable as LabelTable
from .families import MParams as MParams
from .families import NeuralDensity as NeuralDensity
from .families import NeuralFit as NeuralFit
from .families import NUTSLocation as NUTSLocation
from .families import NUTSParams as NUTSParams
from .families import Poisson as Poisson
from .families import PoissonStats as PoissonStats
from .families import RandomFeatures as RandomFeatures
from .families import RegressionData as RegressionData
from .families import RFParams as RFParams
from .families import Ridge as Ridge
from .families import RidgeParams as RidgeParams
from .graph import CollapseReport as CollapseReport
from .graph import InteractionGraph as InteractionGraph
from .graph import simulate_graph as simulate_graph
from .pressures import Pressured as Pressured
from .regimes import AbstractPlannedRegime as AbstractPlannedRegime
from .regimes import AbstractRegime as AbstractRegime
from .regimes import Accumulate as Accumulate
from .regimes import AccumulateMix as AccumulateMix
from .regimes import AccumulateSubsample as AccumulateSubsample
from .regimes import Context as Context
from .regimes import Edit as Edit
from .regimes import FreshMix as FreshMix
from .regimes import MixTeacher as MixTeacher
from .regimes import Provenance as Provenance
from .regimes import Replace as Replace
from .regimes import RetainOriginal as RetainOriginal
from .regimes import Schedule as Schedule
from .regimes import TrainingSet as TrainingSet
from .regimes import Weighted as Weighted
from .results import Result as Result
from .results import load as load
from .synthesis import Synthesis as Synthesis

__all__ = [
    "AbstractFamily",
    "AbstractPlannedRegime",
    "AbstractRegime",
    "Accumulate",
    "AccumulateMix",
    "AccumulateSubsample",
    "BayesGaussian",
    "BayesGaussianParams",
    "BayesLinearRegression",
    "Bigram",
    "BLRParams",
    "Categorical",
    "chain_fn",
    "CollapseReport",
    "Context",
    "CouplingFlow",
    "data",
    "Downstream",
    "Edit",
    "Empirical",
    "FreshMix",
    "from_config",
    "Gaussian",
    "GaussianParams",
    "GLM",
    "GMM",
    "GMMParams",
    "HuberLocation",
    "HuberRegression",
    "InteractionGraph",
    "KDE",
    "KDEParams",
    "LabelChain",
    "LabelledInputs",
    "LabelTable",
    "load",
    "merge_shards",
    "MixTeacher",
    "MParams",
    "NeuralDensity",
    "NeuralFit",
    "NUTSLocation",
    "NUTSParams",
    "Poisson",
    "PoissonStats",
    "Pressured",
    "Provenance",
    "RandomFeatures",
    "RegressionData",
    "Replace",
    "Result",
    "RetainOriginal",
    "RFParams",
    "Ridge",
    "RidgeParams",
    "Schedule",
    "simulate",
    "simulate_graph",
    "simulate_shard",
    "Stream",
    "Synthesis",
    "theory",
    "TrainingSet",
    "VAE",
    "Weighted",
]

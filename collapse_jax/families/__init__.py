"""Model families: one file each."""

from ._base import AbstractFamily as AbstractFamily
from .bayes_gaussian import BayesGaussian as BayesGaussian
from .bayes_gaussian import BayesGaussianParams as BayesGaussianParams
from .bayes_regression import BayesLinearRegression as BayesLinearRegression
from .bayes_regression import BLRParams as BLRParams
from .categorical import Categorical as Categorical
from .gaussian import Gaussian as Gaussian
from .gaussian import GaussianParams as GaussianParams
from .gaussian import GaussianStats as GaussianStats
from .gmm import GMM as GMM
from .gmm import GMMParams as GMMParams
from .kde import KDE as KDE
from .kde import KDEParams as KDEParams
from .mestimators import GLM as GLM
from .mestimators import HuberLocation as HuberLocation
from .mestimators import HuberRegression as HuberRegression
from .mestimators import MParams as MParams
from .nuts_location import NUTSLocation as NUTSLocation
from .nuts_location import NUTSParams as NUTSParams
from .ridge import Downstream as Downstream
from .ridge import RegressionData as RegressionData
from .ridge import Ridge as Ridge
from .ridge import RidgeParams as RidgeParams

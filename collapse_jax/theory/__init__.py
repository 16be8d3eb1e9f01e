"""Closed forms for model collapse, indexed by the simulator's generation g.

Generation g is fit t = g + 1.

See THEORY.md for the derivations and sources.
"""

from . import bayes as bayes  # Bayesian learners: cj.theory.bayes.known_variance_mean_sq_error, ...
from . import categorical as categorical  # cj.theory.categorical.collision_replace, ...
from . import graph as graph  # interaction graphs: cj.theory.graph.mean_sq_error, ...
from . import kde as kde  # KDE chains: cj.theory.kde.variance_replace, ...
from . import ngram as ngram  # bigram chains: cj.theory.ngram.transition_mean, ...
from . import poisson as poisson  # Poisson chains: cj.theory.poisson.extinction_replace, ...
from . import random_features as random_features  # width sweeps: cj.theory.random_features.projection_replace_error
from . import selection as selection  # curation, verification, editing: cj.theory.selection.curation_chain, ...
from . import tails as tails  # memoriser scaling laws on Zipf data: cj.theory.tails.cut_error, ...
from . import traced as traced  # jnp closed forms for jit and grad: cj.theory.traced.weighted_steady_state, ...
from .gaussian import collapse_probability as collapse_probability
from .gaussian import log_variance_drift as log_variance_drift
from .gaussian import log_variance_mean as log_variance_mean
from .gaussian import log_variance_var as log_variance_var
from .gaussian import logdet_drift as logdet_drift
from .gaussian import logdet_ratio_mean as logdet_ratio_mean
from .gaussian import logdet_ratio_var as logdet_ratio_var
from .gaussian import mean_sq_error_replace as mean_sq_error_replace
from .gaussian import sd_factor as sd_factor
from .gaussian import sd_mean as sd_mean
from .gaussian import trace_ratio_mean as trace_ratio_mean
from .gaussian import variance_mean as variance_mean
from .gaussian import variance_relative_var as variance_relative_var
from .gaussian import w2_sq_mean as w2_sq_mean
from .mixing import accumulate_mix_mean_sq_error as accumulate_mix_mean_sq_error
from .mixing import freshmix_moments as freshmix_moments
from .mixing import freshmix_steady_state as freshmix_steady_state
from .mixing import mean_sq_error_accumulate as mean_sq_error_accumulate
from .mixing import optimal_real_weight as optimal_real_weight
from .mixing import retain_original_mean_sq_error as retain_original_mean_sq_error
from .mixing import retain_original_steady_state as retain_original_steady_state
from .mixing import variance_mean_accumulate as variance_mean_accumulate
from .mixing import weighted_mean_sq_error as weighted_mean_sq_error
from .mixing import weighted_steady_state as weighted_steady_state
from .pressures import correction_moments as correction_moments
from .pressures import effective_real_fraction as effective_real_fraction
from .pressures import pressure_mean_sq_error as pressure_mean_sq_error
from .pressures import pressure_variance_mean as pressure_variance_mean
from .pressures import provenance_mean_sq_error as provenance_mean_sq_error
from .pressures import provenance_steady_state as provenance_steady_state
from .pressures import schedule_mean_sq_error as schedule_mean_sq_error
from .pressures import schedule_variance_mean as schedule_variance_mean
from .pressures import truncation_variance_factor as truncation_variance_factor
from .regression import dohmatob_downstream_test_error as dohmatob_downstream_test_error
from .regression import label_mixing_factor as label_mixing_factor
from .regression import minnorm_replace_test_error as minnorm_replace_test_error
from .regression import minnorm_weighted_test_error as minnorm_weighted_test_error
from .regression import ols_accumulate_limit as ols_accumulate_limit
from .regression import ols_accumulate_test_error as ols_accumulate_test_error
from .regression import ols_replace_test_error as ols_replace_test_error
from .regression import ols_weighted_test_error as ols_weighted_test_error
from .regression import optimal_label_mixing_weight as optimal_label_mixing_weight
from .regression import ridge_downstream_test_error as ridge_downstream_test_error
from .regression import ridge_replace_test_error as ridge_replace_test_error

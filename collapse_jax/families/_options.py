"""The families' string options as ``Literal`` types, for their constructors' signatures.

A type checker reads the ``Literal``; at run time each family checks the value against
the tuple its module derives from it (``SAMPLERS = get_args(Sampler)``), so the two
never disagree and a bad value still raises the family's ``ValueError``.
"""

from __future__ import annotations

from typing import Literal

Sampler = Literal["samples", "exact"]
Estimator = Literal["mle", "unbiased"]
Predictive = Literal["plugin", "posterior", "marginal"]
Design = Literal["fixed", "fresh"]
Covariance = Literal["full", "diag", "spherical"]
Init = Literal["warm", "refit"]
Kernel = Literal["gaussian"]
Likelihood = Literal["normal", "student_t"]
Optimizer = Literal["lbfgs", "gd", "adam"]
GLMKind = Literal["logistic", "poisson"]

"""How generation g's training set is composed (docs/ARCHITECTURE.md; the table of
regimes is README.md, "Regimes").

Generation 0 is always the fit to the chain's original sample of n real points; a
regime decides what generation g >= 1 trains on. A regime describes the set
(:class:`TrainingSet`, from ``plan``) and :func:`assemble` builds it, for every
family, on both paths. Fractions and weights are traced (a fixed buffer of slots and
a traced mask assign each slot to a source), so sweeping them never recompiles;
sizes are static.
"""

from .._rng import STREAM_USER as STREAM_USER  # streams free for user regimes and synthesis steps
from ._protocol import PLAIN as PLAIN
from ._protocol import AbstractPlannedRegime as AbstractPlannedRegime
from ._protocol import AbstractRegime as AbstractRegime
from ._protocol import Context as Context
from ._protocol import TrainingSet as TrainingSet
from ._protocol import assemble as assemble
from ._protocol import fit_original as fit_original
from ._protocol import generation_zero as generation_zero
from ._protocol import init_state as init_state
from ._protocol import original_sample as original_sample
from ._protocol import truth_dtype as truth_dtype
from .edit import Edit as Edit
from .memory import Accumulate as Accumulate
from .memory import AccumulateMix as AccumulateMix
from .memory import AccumulateSubsample as AccumulateSubsample
from .mixing import FreshMix as FreshMix
from .mixing import MixTeacher as MixTeacher
from .mixing import Provenance as Provenance
from .mixing import Replace as Replace
from .mixing import RetainOriginal as RetainOriginal
from .mixing import Schedule as Schedule
from .mixing import Weighted as Weighted

REGIMES = {
    "replace": Replace,
    "accumulate": Accumulate,
    "accumulate_subsample": AccumulateSubsample,
    "accumulate_mix": AccumulateMix,
    "freshmix": FreshMix,
    "weighted": Weighted,
    "retain_original": RetainOriginal,
}

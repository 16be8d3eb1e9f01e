"""What a run returns and how it is stored: ``Result`` (per-chain arrays or streamed
summaries and their statistics, ``result.py``) and its netCDF form (``store.py``)."""

from .result import Result as Result
from .result import SummaryAccumulator as SummaryAccumulator
from .result import atomic_write as atomic_write
from .result import load as load
from .result import result_paths as result_paths
from .result import run_info as run_info
from .store import FORMAT_VERSION as FORMAT_VERSION

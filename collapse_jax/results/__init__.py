"""What a run returns and how it is stored: ``Result`` (per-chain arrays or streamed
summaries and their statistics, ``result.py``) and its netCDF form (``store.py``)."""

from .info import run_info as run_info
from .result import Result as Result
from .result import atomic_write as atomic_write
from .result import load as load
from .result import result_paths as result_paths
from .store import FORMAT_VERSION as FORMAT_VERSION
from .summary import SummaryAccumulator as SummaryAccumulator

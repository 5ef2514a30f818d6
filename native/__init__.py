"""Native core: the Cython price-time priority engine with its pure-Python reference engine, and the Cython
pre-trade check that `oms.core.accounts.AccountState` keeps its numbers in (its Python rules are the reference)."""

from native._book import MatchingEngine
from native._risk import UNDECIDED, RiskKernel
from native.reference import ReferenceEngine
from native.types import CMD_CANCEL, CMD_DTYPE, CMD_NEW, CMD_REPLACE, EVENT_DTYPE, EVENT_FIELDS, BookEvent

__all__ = [
    "CMD_CANCEL",
    "CMD_DTYPE",
    "CMD_NEW",
    "CMD_REPLACE",
    "EVENT_DTYPE",
    "EVENT_FIELDS",
    "UNDECIDED",
    "BookEvent",
    "MatchingEngine",
    "ReferenceEngine",
    "RiskKernel",
]

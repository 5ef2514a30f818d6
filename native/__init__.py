"""Matching core: a Cython price-time priority engine and a pure-Python reference engine with the same interface."""

from native._book import MatchingEngine
from native.reference import ReferenceEngine
from native.types import CMD_CANCEL, CMD_DTYPE, CMD_NEW, CMD_REPLACE, EVENT_DTYPE, EVENT_FIELDS, BookEvent

__all__ = [
    "CMD_CANCEL",
    "CMD_DTYPE",
    "CMD_NEW",
    "CMD_REPLACE",
    "EVENT_DTYPE",
    "EVENT_FIELDS",
    "BookEvent",
    "MatchingEngine",
    "ReferenceEngine",
]

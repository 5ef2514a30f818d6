"""From a parent command to a parent: `validate` says whether a command can become one, `make_parent` builds it."""

from __future__ import annotations

from oms.core.algos.messages import (
    AlgoRejectReason,
    SubmitBracket,
    SubmitIceberg,
    SubmitParent,
    SubmitPov,
    SubmitTwap,
    SubmitVwap,
)
from oms.core.algos.parents.base import Parent
from oms.core.algos.parents.bracket import BracketParent
from oms.core.algos.parents.iceberg import IcebergParent
from oms.core.algos.parents.scheduled import PovParent, ScheduleParent, twap_plan, vwap_times
from oms.core.model.enums import Side
from oms.core.model.instruments import Instrument

__all__ = ["make_parent", "validate"]


def _on_grid(value: int | None, step: int) -> bool:
    return value is None or (value > 0 and value % step == 0)


MAX_SEED = 2**63 - 1  # the journal (msgpack) keeps integers of 64 bits

def validate(cmd: SubmitParent, inst: Instrument | None) -> tuple[AlgoRejectReason, str]:
    """(NONE, "") when `cmd` can become a parent, else the reason and a text naming the field."""
    R = AlgoRejectReason
    if inst is None:
        return R.UNKNOWN_SYMBOL, f"unknown symbol {cmd.symbol!r}"
    if cmd.qty <= 0:
        return R.INVALID_QTY, f"qty {cmd.qty} must be > 0"
    if cmd.qty % inst.lot:
        return R.OFF_LOT, f"qty {cmd.qty} is off the lot grid ({inst.lot})"
    match cmd:
        case SubmitTwap() | SubmitVwap():
            if cmd.end_ns <= cmd.start_ns:
                return R.INVALID_WINDOW, "end_ns must be after start_ns"
            if not _on_grid(cmd.limit_price, inst.tick):
                return R.OFF_TICK, f"limit_price {cmd.limit_price} is off the tick grid ({inst.tick})"
            if isinstance(cmd, SubmitTwap):
                if cmd.slices < 1:
                    return R.INVALID_SLICES, f"slices {cmd.slices} must be >= 1"
                if not 0 <= cmd.jitter_pct <= 100:
                    return R.INVALID_JITTER, f"jitter_pct {cmd.jitter_pct} must be within 0..100"
                if not 0 <= cmd.seed <= MAX_SEED:
                    return R.INVALID_SEED, f"seed {cmd.seed} must be within 0..{MAX_SEED}"
            elif not cmd.profile or any(w < 0 for w in cmd.profile) or sum(cmd.profile) == 0:
                return R.INVALID_PROFILE, "profile must hold non-negative weights, not all zero"
        case SubmitPov():
            if not 0 < cmd.rate_bp <= 10_000:
                return R.INVALID_RATE, f"rate_bp {cmd.rate_bp} must be within 1..10000"
            if not 0 < cmd.min_clip <= cmd.max_clip or cmd.min_clip % inst.lot or cmd.max_clip % inst.lot:
                return R.INVALID_CLIP, "clips must satisfy 0 < min_clip <= max_clip, on the lot grid"
            if cmd.end_ns is not None and cmd.end_ns <= cmd.start_ns:
                return R.INVALID_WINDOW, "end_ns must be after start_ns"
            if not _on_grid(cmd.limit_price, inst.tick):
                return R.OFF_TICK, f"limit_price {cmd.limit_price} is off the tick grid ({inst.tick})"
        case SubmitIceberg():
            if not 0 < cmd.display_qty <= cmd.qty or cmd.display_qty % inst.lot:
                return R.INVALID_DISPLAY_QTY, f"display_qty {cmd.display_qty} must be within 1..qty, on the lot grid"
            if not _on_grid(cmd.price, inst.tick):
                return R.OFF_TICK, f"price {cmd.price} is off the tick grid ({inst.tick})"
        case SubmitBracket():
            for name in ("entry_price", "take_profit", "stop_loss", "stop_limit"):
                if not _on_grid(getattr(cmd, name), inst.tick):
                    return R.OFF_TICK, f"{name} {getattr(cmd, name)} is off the tick grid ({inst.tick})"
            lo, hi = (cmd.stop_loss, cmd.take_profit) if cmd.side is Side.BUY else (cmd.take_profit, cmd.stop_loss)
            if not lo < hi or (cmd.entry_price is not None and not lo < cmd.entry_price < hi):
                return R.INVALID_BRACKET, "need stop_loss < entry_price < take_profit for a buy (reversed for a sell)"
    return R.NONE, ""


def make_parent(cmd: SubmitParent, inst: Instrument, max_rejects: int = 3) -> Parent:
    """The parent for a command that `validate` passed."""
    match cmd:
        case SubmitTwap():
            times, weights = twap_plan(cmd)
            return ScheduleParent(cmd, inst.lot, max_rejects, weights, times)
        case SubmitVwap():
            return ScheduleParent(cmd, inst.lot, max_rejects, list(cmd.profile), vwap_times(cmd))
        case SubmitPov():
            return PovParent(cmd, inst.lot, max_rejects)
        case SubmitIceberg():
            return IcebergParent(cmd, inst.lot, max_rejects)
        case SubmitBracket():
            return BracketParent(cmd, inst.lot, max_rejects)
    raise TypeError(f"not a parent command: {cmd!r}")

"""The new-order risk checks, in the order they run: the one list every copy of the rules is held to.

`RULES` declares each check once: its name, the function in `risk.checks` that makes it, the reasons it can give
(in the order it gives them), whether a cancel/replace runs it again, whether the Cython kernel makes it, and how
reserved mode covers it. The first check that fails is the order's reason. Everything else follows the list, and a
test fails when it does not:

- `oms.core.accounts.AccountState` (`decide`, `reference_reason`, `decide_replace`) calls the checks in this order
  (tests/unit/core/test_risk_rules.py traces the calls);
- the Cython kernel declares the reasons it checks, in its order, as `native._risk.CHECK_ORDER`, which must equal
  `KERNEL_ORDER` (`oms.core.accounts` refuses to import a kernel built from other rules; tests/property/
  test_risk_kernel.py holds each of its answers to the Python rules and requires its histories to reach every
  reason here);
- reserved mode: every check says how an order the engine accepts within an allowance is known to pass it (`Cover`),
  naming the allowance terms it relies on (fields of `oms.core.accounts.AllowanceGranted` or `SymbolAllowance`);
- every reason here has a text (`risk.reasons`) and an explicit OrdRejReason in both FIX codecs.

How to add a check: docs/risk.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from oms.core.model.enums import RejectReason as R
from risk import checks

__all__ = ["KERNEL_ORDER", "REASONS", "RULES", "Cover", "Rule"]


class Cover(Enum):
    """How reserved mode knows that an order the engine accepts within its allowance passes a check (the proof is
    at the top of `oms.core.reserved`; tests/property/test_reserved_safety.py checks it)."""

    #: The engine's gate makes the check itself, on inputs that match the account's while the grant lives (the
    #: limits at the grant, which a change voids; the ClOrdIDs the account had then plus every one sent since).
    EXACT = "exact"
    #: The gate spends only within the allowance terms the rule names, and the account's certificate (re-checked
    #: after every event) keeps every order within them passing the check; it voids the grant the moment not.
    TERMS = "terms"
    #: The certificate requires an account state in which the check passes every order (no kill switch, ACTIVE,
    #: a reference price), and the grant is void while it does not hold.
    CERTIFICATE = "certificate"
    #: The gate never decides an order this check could refuse: the account decides it.
    FALLBACK = "fallback"


@dataclass(frozen=True, slots=True)
class Rule:
    """One new-order check. `terms`: the allowance terms its reserved cover relies on (at least one for TERMS).
    `replace`: a cancel/replace runs it again on the new terms. `native`: the Cython kernel makes it too."""

    name: str
    check: Callable[..., R]
    reasons: tuple[R, ...]
    reserved: Cover
    terms: tuple[str, ...] = ()
    replace: bool = True
    native: bool = True


RULES: tuple[Rule, ...] = (
    # the kernel holds one account's numbers: `decide` answers an order of another account before it asks
    Rule("account", checks.check_account, (R.UNKNOWN_ACCOUNT,), Cover.FALLBACK, native=False),
    Rule("trading_state", checks.check_trading_state, (R.KILL_SWITCH, R.HALTED), Cover.CERTIFICATE),
    Rule("symbol", checks.check_symbol, (R.UNKNOWN_SYMBOL,), Cover.TERMS, ("symbols",)),
    Rule("restricted", checks.check_restricted, (R.RESTRICTED_SYMBOL,), Cover.TERMS, ("symbols",), replace=False),
    Rule("duplicate", checks.check_duplicate, (R.DUPLICATE_CL_ORD_ID,), Cover.EXACT, replace=False),
    Rule("order_qty", checks.check_order_qty, (R.INVALID_QTY, R.MAX_ORDER_QTY), Cover.EXACT),
    Rule("reference", checks.check_reference, (R.NO_REFERENCE_PRICE,), Cover.CERTIFICATE, ("symbols", "value_cap")),
    Rule("notional", checks.check_order_notional, (R.MAX_ORDER_NOTIONAL,), Cover.EXACT, ("value_cap",)),
    Rule("collar", checks.check_collar, (R.PRICE_COLLAR,), Cover.TERMS, ("lo", "hi")),
    Rule("order_rate", checks.check_order_rate, (R.ORDER_RATE,), Cover.TERMS, ("orders", "rate_used"), replace=False),
    Rule("open_orders", checks.check_max_open_orders, (R.MAX_OPEN_ORDERS,), Cover.TERMS, ("orders",), replace=False),
    Rule("reduce_only", checks.check_reduce_only, (R.REDUCE_ONLY,), Cover.CERTIFICATE),
    Rule("position", checks.check_position, (R.POSITION_LIMIT,), Cover.TERMS, ("buy_qty", "sell_qty")),
    Rule("gross", checks.check_gross, (R.GROSS_LIMIT,), Cover.TERMS, ("buy_qty", "sell_qty", "value_cap")),
    Rule("net", checks.check_net, (R.NET_LIMIT,), Cover.TERMS, ("buy_qty", "sell_qty", "value_cap")),
    Rule("credit", checks.check_credit, (R.CREDIT_LIMIT,), Cover.TERMS, ("credit",)),
)

#: The reasons the Cython kernel gives, in the order it checks them: `native._risk.CHECK_ORDER` must equal it.
KERNEL_ORDER: tuple[R, ...] = tuple(reason for rule in RULES if rule.native for reason in rule.reasons)

#: Every reason a new order can be refused with by the account's rules.
REASONS: frozenset[R] = frozenset(reason for rule in RULES for reason in rule.reasons)

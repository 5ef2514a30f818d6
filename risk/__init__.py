"""Pure pre-trade and post-trade risk checks over an account's state and limits.

- `risk.rules`: the ordered list of new-order checks (`RULES`) that the account's rules, the Cython kernel, reserved
  mode and the reason maps are held to; docs/risk.md says how to add one.
- `risk.checks`: one function per check, each returning `RejectReason.NONE` or the reason to refuse.
- `risk.reasons`: the human text for every RejectReason (`describe`).
- `risk.limits`: per-account limits from `configs/accounts.toml`, validated at start-up (`load_risk_config`).
- `risk.money`: integer money (MONEY_PRECISION) and exact notional of an instrument's qty x price.
- `risk.throttle`: sliding-window rate limits (`SlidingWindow`, `SessionThrottle`).
- `risk.breakers`: drawdown circuit breakers on start-of-day equity.

The account state these run against is `oms.core.accounts.AccountState`; the order they run in is `risk.rules`.
No I/O here.
"""

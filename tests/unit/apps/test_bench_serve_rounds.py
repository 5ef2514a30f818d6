"""`oms bench serve --rounds`: each row is the round with the median p50, every round's figures kept beside it."""

from __future__ import annotations

from typing import Any

from bench.serve import median_rows, overload


def row(server: str, rate: float, p50: float, round_no: int, **extra: Any) -> dict[str, Any]:
    answered = {"p50": p50, "p99": 10 * p50, "max": 20 * p50, "refused": 0, "unanswered": 0}
    return {"server": server, "sessions": 1, "rate": rate, "round": round_no, "new": dict(answered),
            "cancel": dict(answered), **extra}  # fmt: skip


def test_each_row_is_the_median_round_and_lists_every_rounds_p50_in_round_order() -> None:
    rounds = [row("oms", 200.0, p50, n) for n, p50 in enumerate((2400.0, 1300.0, 1100.0))]
    rounds += [row("bare", 200.0, p50, n) for n, p50 in enumerate((300.0, 500.0))]  # an even count: the lower

    oms, bare = median_rows(rounds)

    assert (oms["server"], oms["round"], oms["new"]["p50"]) == ("oms", 1, 1300.0)
    assert oms["rounds_new_p50"] == [2400.0, 1300.0, 1100.0] and oms["rounds_new_p99"] == [24000.0, 13000.0, 11000.0]
    assert (bare["round"], bare["new"]["p50"]) == (0, 300.0)
    assert "rounds_new_p50" not in rounds[1]  # the rounds' own rows are left as they were


def test_a_rate_only_some_rounds_reached_is_the_median_of_those_and_overload_steps_stay_apart() -> None:
    rounds = [row("oms", 1000.0, 900.0, 0), row("oms", 1000.0, 8000.0, 1), row("oms", 1600.0, 5000.0, 0),
              row("oms", 2000.0, 4000.0, 0, overload=True), row("oms", 2000.0, 3000.0, 1, overload=True)]  # fmt: skip

    rows = median_rows(rounds)

    assert [(r["rate"], bool(r.get("overload")), r["rounds_new_p50"]) for r in rows] == [
        (1000.0, False, [900.0, 8000.0]), (1600.0, False, [5000.0]), (2000.0, True, [4000.0, 3000.0])]  # fmt: skip
    step = overload(rows)
    assert step is not None and step["rate"] == 2000.0 and step["max_us"] == 20 * 3000.0

"""The REST desk's pure helpers: the client's id read back from the OMS's internal ClOrdIDs, RFC 3339 times with
nanoseconds, and the page token's round trip and refusals."""

from __future__ import annotations

import pytest

from oms.adapters.api.desk import client_id, page_token, read_page_token, rfc3339
from oms.adapters.api.errors import ApiError


@pytest.mark.parametrize(
    ("session", "cl_ord_id", "shown"),
    [
        ("REST:trader1", "~r1~mine", "mine"),
        ("REST:trader1", "~c12~a~b", "a~b"),  # the client's own id may hold a tilde after its first character
        ("REST:trader1", "mine", "mine"),
        ("REST:trader1", "~odd", "~odd"),  # not one the desk made: shown as it is
        ("FIX.4.4:OMS->CLIENT44", "~r1~x", "~r1~x"),  # a FIX client's ClOrdID is never rewritten
    ],
)
def test_the_client_sees_its_own_id_behind_an_internal_cl_ord_id(session: str, cl_ord_id: str, shown: str) -> None:
    assert client_id(session, cl_ord_id) == shown


def test_times_are_rfc3339_utc_with_all_nine_fraction_digits() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00.000000000Z"
    assert rfc3339(1_796_585_479_000_000_007) == "2026-12-06T19:31:19.000000007Z"
    assert rfc3339(None) is None
    assert rfc3339(10**9 - 1) < rfc3339(10**9)  # type: ignore[operator]  # text order is time order


def test_a_page_token_round_trips_and_a_foreign_or_other_direction_one_is_refused() -> None:
    assert read_page_token(page_token(1_000_000_042, "desc"), "desc") == 1_000_000_042
    assert read_page_token(page_token(7, "asc"), "asc") == 7
    for bad in ("", "!!", "bzEuZGVzYy4tMQ", "eDEuZGVzYy4x", page_token(5, "asc") + "A"):
        with pytest.raises(ApiError) as refused:
            read_page_token(bad, "asc")
        assert (refused.value.status, refused.value.code) == (400, "invalid_page_token"), bad
    with pytest.raises(ApiError, match="direction=desc"):
        read_page_token(page_token(5, "desc"), "asc")

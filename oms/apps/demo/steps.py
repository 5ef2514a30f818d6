"""What a step of the scripted day is, and how it fails: a DemoFailed naming the step."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

__all__ = ["DemoFailed", "step"]


class DemoFailed(Exception):
    """A scripted step did not get the answer it expects."""


@contextmanager
def step(title: str) -> Iterator[None]:
    """A titled step of the script: its failures name it."""
    print(f"\n== {title}")
    try:
        yield
    except DemoFailed as exc:
        raise DemoFailed(f"{title}: {exc}") from None
    except (httpx.HTTPError, TimeoutError, ConnectionError) as exc:
        raise DemoFailed(f"{title}: {type(exc).__name__}: {exc}") from None

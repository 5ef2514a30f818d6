"""Starting and joining Ray for the account actors.

By default a small local cluster sized for a 2-core machine; with `address` set, the OMS joins an existing cluster
(`"auto"` finds a local `ray start --head`). Actors live in the `oms` namespace so a restarted gateway finds them.
"""

from __future__ import annotations

import logging
import os
from typing import Annotated

import msgspec

from oms.infra.ray.reaper import Reaper

NAMESPACE = "oms"


class RaySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The `[ray]` table of the OMS config."""

    address: str | None = None  # None: start a local cluster; "auto" or "host:port": join one
    num_cpus: Annotated[int, msgspec.Meta(ge=1)] = 2
    object_store_mb: Annotated[int, msgspec.Meta(ge=64)] = 200
    namespace: str = NAMESPACE
    accounts_per_actor: Annotated[int, msgspec.Meta(ge=1)] = 1  # pack several accounts into one actor


_reaper: Reaper | None = None  # of the local cluster this process started
# Ray's single-machine mode (its default on macOS and Windows): the node's address is loopback, so the GCS, the
# raylet, the agents and every worker listen on 127.0.0.1 only, not on the machine's address
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def start_ray(settings: RaySettings) -> bool:
    """Start (or join) Ray with `settings`; a no-op when this process is already connected. True when this call
    connected it (the caller's to stop with `stop_ray`).

    A local cluster gets `num_cpus`, a small object store and no dashboard, as a small machine needs, listens on
    loopback only (when this call is the process's first import of Ray), and gets a reaper that ends every one of
    its processes when this process ends, even by SIGKILL (`oms.infra.ray.reaper`); joining a cluster takes its
    resources as they are."""
    if settings.address is None:  # read when Ray is first imported: set before the import below
        os.environ.setdefault(LOCAL_ONLY_ENV, "0")
    import ray

    global _reaper
    if ray.is_initialized():
        return False
    common = {"namespace": settings.namespace, "logging_level": logging.WARNING, "log_to_driver": False}
    if settings.address is None:
        _reaper = Reaper()
        with _reaper.marking():
            ray.init(
                num_cpus=settings.num_cpus,
                object_store_memory=settings.object_store_mb * 1024 * 1024,
                include_dashboard=False,
                **common,
            )
    else:
        ray.init(address=settings.address, **common)
    return True


def stop_ray() -> None:
    """Disconnect from Ray (and stop the local cluster this process started, every process of it)."""
    import ray

    global _reaper
    if ray.is_initialized():
        ray.shutdown()
    if _reaper is not None:
        _reaper.stop()
        _reaper = None

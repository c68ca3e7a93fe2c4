"""Liveness and system status."""

from __future__ import annotations

import shutil
from typing import Annotated

from fastapi import APIRouter

from citywatch.api.deps import Runtime, require
from citywatch.governance.accounts import Principal
from citywatch.governance.roles import Permission as P

router = APIRouter(tags=["system"])


@router.get("/system/status")
def status(who: Annotated[Principal, require(P.SYSTEM_READ)], cw: Runtime) -> dict[str, object]:
    root = cw.index.root
    disk = shutil.disk_usage(root)
    usage = cw.index.usage()
    states: dict[str, int] = {}
    for cam in cw.cameras.all():
        state = cw.cameras.health(cam.id).state
        states[state] = states.get(state, 0) + 1
    return {
        "cameras": states,
        "recordings": {cam: {"segments": n, "bytes": b} for cam, (n, b) in sorted(usage.items())},
        "disk": {"total": disk.total, "free": disk.free},
        "retention": {"policy": cw.retention_policy().__dict__, "last_run": cw.sweeper.last_run},
        "database": cw.db.engine.dialect.name,
    }

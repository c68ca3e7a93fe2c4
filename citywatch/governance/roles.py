"""Roles and what each may do. Least privilege: each role gets only what its job needs."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    CAMERA_READ = "camera.read"
    CAMERA_MANAGE = "camera.manage"
    LIVE_VIEW = "live.view"
    PLAYBACK = "playback"
    EXPORT = "export"
    USER_MANAGE = "user.manage"
    AUDIT_READ = "audit.read"
    SYSTEM_READ = "system.read"
    SEARCH = "search"  # plate search and trails, hotlist management


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    INVESTIGATOR = "investigator"
    AUDITOR = "auditor"
    VIEWER = "viewer"


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset({P.CAMERA_READ, P.LIVE_VIEW, P.SYSTEM_READ}),
    Role.INVESTIGATOR: frozenset({P.CAMERA_READ, P.LIVE_VIEW, P.PLAYBACK, P.EXPORT, P.SEARCH}),
    Role.AUDITOR: frozenset({P.AUDIT_READ, P.CAMERA_READ, P.SYSTEM_READ}),
    Role.VIEWER: frozenset({P.CAMERA_READ, P.LIVE_VIEW}),
}


def has_permission(role: str, permission: Permission) -> bool:
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False

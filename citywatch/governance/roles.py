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
    CASE_MANAGE = "case.manage"  # open and close cases, attach evidence to them
    # Biometrics (faces). Kept apart on purpose: requesting an authorisation, approving it,
    # and confirming a match are different people's jobs, and no role holds two of them.
    FACE_WATCHLIST = "faces.watchlist"  # manage face watchlists and enrolments
    FACE_REQUEST = "faces.request"  # request authorisations; retrospective search by photo
    FACE_APPROVE = "faces.approve"  # approve or revoke authorisations (the authority)
    FACE_REVIEW = "faces.review"  # confirm or reject candidate matches
    FACE_USE_LOG = "faces.use_log"  # read and export the use log of authorisations


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    INVESTIGATOR = "investigator"
    AUDITOR = "auditor"
    VIEWER = "viewer"
    AUTHORITY = "authority"  # a prosecutor or judge's delegate who approves authorisations
    REVIEWER = "reviewer"  # a trained officer who verifies candidate face matches


P = Permission
BIOMETRIC = frozenset({P.FACE_WATCHLIST, P.FACE_REQUEST, P.FACE_APPROVE, P.FACE_REVIEW})
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    # The administrator runs the system, not investigations: no biometric powers.
    Role.ADMIN: frozenset(Permission) - BIOMETRIC,
    Role.OPERATOR: frozenset({P.CAMERA_READ, P.LIVE_VIEW, P.SYSTEM_READ}),
    Role.INVESTIGATOR: frozenset(
        {
            P.CAMERA_READ,
            P.LIVE_VIEW,
            P.PLAYBACK,
            P.EXPORT,
            P.SEARCH,
            P.CASE_MANAGE,
            P.FACE_WATCHLIST,
            P.FACE_REQUEST,
        }
    ),
    Role.AUDITOR: frozenset({P.AUDIT_READ, P.CAMERA_READ, P.SYSTEM_READ, P.FACE_USE_LOG}),
    Role.VIEWER: frozenset({P.CAMERA_READ, P.LIVE_VIEW}),
    Role.AUTHORITY: frozenset({P.CAMERA_READ, P.FACE_APPROVE, P.FACE_USE_LOG}),
    Role.REVIEWER: frozenset({P.CAMERA_READ, P.LIVE_VIEW, P.PLAYBACK, P.FACE_REVIEW}),
}


def has_permission(role: str, permission: Permission) -> bool:
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False

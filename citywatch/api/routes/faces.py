"""Face identification under legal authorisation: authorisations, watchlists, candidate
review, retrospective search by photo, and the use log.

Who does what (see citywatch/governance/roles.py): an investigator requests authorisations,
keeps watchlists and searches footage; an authority approves or revokes authorisations;
reviewers confirm or reject candidate matches (two different reviewers to confirm); an
auditor or the authority reads the use log. The administrator has none of these powers.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from citywatch.api.deps import Runtime, Who, check_camera, client_of, require
from citywatch.api.problems import Problem
from citywatch.api.routes.recordings import parse_time
from citywatch.events.faces import FaceError, describe_candidate, describe_watchlist
from citywatch.events.faces import NotFound as FaceNotFound
from citywatch.governance.accounts import Principal
from citywatch.governance.audit import AuditRecord
from citywatch.governance.authorisations import AuthorisationError, describe, target
from citywatch.governance.authorisations import NotFound as AuthNotFound
from citywatch.governance.cases import CaseError
from citywatch.governance.cases import NotFound as CaseNotFound
from citywatch.governance.cases import describe as describe_case
from citywatch.governance.roles import Permission as P
from citywatch.governance.roles import has_permission
from citywatch.runtime import CityWatch
from citywatch.search.faces import NotFound as SearchNotFound
from citywatch.search.faces import OutOfScope, SearchError
from citywatch.search.faces import describe as describe_search

router = APIRouter(tags=["faces"])

Requester = Annotated[Principal, require(P.FACE_REQUEST)]
Approver = Annotated[Principal, require(P.FACE_APPROVE)]
Reviewer = Annotated[Principal, require(P.FACE_REVIEW)]
Keeper = Annotated[Principal, require(P.FACE_WATCHLIST)]
UseLogReader = Annotated[Principal, require(P.FACE_USE_LOG)]
CaseManager = Annotated[Principal, require(P.CASE_MANAGE)]
MAX_UPLOAD = 20 * 1024 * 1024


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """Service errors as problems: refused input 422, unknown ids 404, scope 403."""
    try:
        yield
    except (AuthNotFound, FaceNotFound, SearchNotFound, CaseNotFound) as e:
        raise Problem(404, str(e).strip("'\"")) from None
    except OutOfScope as e:
        raise Problem(403, str(e)) from None
    except (AuthorisationError, FaceError, SearchError, CaseError) as e:
        raise Problem(422, str(e)) from None


def _biometric(who: Principal) -> None:
    if not any(
        has_permission(who.role, p)
        for p in (P.FACE_REQUEST, P.FACE_APPROVE, P.FACE_REVIEW, P.FACE_USE_LOG)
    ):
        raise Problem(403, f"your role ({who.role}) has no part in face identification")


async def _upload(file: UploadFile, what: str) -> bytes:
    data = await file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise Problem(413, f"{what}: larger than {MAX_UPLOAD // (1024 * 1024)} MB")
    if not data:
        raise Problem(422, f"{what}: empty file")
    return data


# -- authorisations ---------------------------------------------------------------------------
class AuthorisationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["realtime", "retrospective"]
    legal_basis: str = Field(min_length=3, max_length=2000)
    authority: str = Field(min_length=2, max_length=200)
    authority_ref: str = Field(min_length=1, max_length=100)
    objective: str = Field(min_length=3, max_length=2000)
    camera_ids: list[str] = Field(min_length=1, max_length=1000)
    watchlist_ids: list[int] = Field(default_factory=list, max_length=100)
    valid_from: str | float
    valid_to: str | float
    footage_from: str | float | None = None
    footage_to: str | float | None = None
    keep_matches_days: float = Field(default=30.0, ge=0, le=3650)
    case_ref: str = Field(default="", max_length=100)


def _ts(value: str | float | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return parse_time(value, name)


def _named(cw: CityWatch, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add the name, legal basis and version of each watchlist an authorisation covers: the
    authority decides on what it can read, and may not open the watchlists themselves."""
    lists = {w.id: w for w in cw.watchlists.all()}
    for item in items:
        item["watchlists"] = [
            {"id": i, "name": w.name, "legal_basis": w.legal_basis, "version": w.version}
            if (w := lists.get(i)) is not None
            else {"id": i, "name": f"watchlist {i} (deleted)", "legal_basis": "", "version": ""}
            for i in item["watchlist_ids"]
        ]
    return items


def _one(cw: CityWatch, item: dict[str, Any]) -> dict[str, Any]:
    return _named(cw, [item])[0]


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=3, max_length=2000)


@router.post("/authorisations", status_code=201)
def create_authorisation(
    body: AuthorisationIn, who: Requester, cw: Runtime, request: Request
) -> dict[str, Any]:
    with errors():
        row = cw.authorisations.create(
            who.username,
            mode=body.mode,
            legal_basis=body.legal_basis,
            authority=body.authority,
            authority_ref=body.authority_ref,
            objective=body.objective,
            camera_ids=body.camera_ids,
            watchlist_ids=body.watchlist_ids,
            valid_from=_ts(body.valid_from, "valid_from") or 0.0,
            valid_to=_ts(body.valid_to, "valid_to") or 0.0,
            footage_from=_ts(body.footage_from, "footage_from"),
            footage_to=_ts(body.footage_to, "footage_to"),
            keep_matches_days=body.keep_matches_days,
            case_ref=body.case_ref,
            client=client_of(request),
        )
    return _one(cw, describe(row, cw.authorisations.clock()))


@router.get("/authorisations")
def list_authorisations(who: Who, cw: Runtime) -> list[dict[str, Any]]:
    _biometric(who)
    now = cw.authorisations.clock()
    return _named(cw, [describe(a, now) for a in cw.authorisations.all()])


@router.get("/authorisations/{auth_id}")
def get_authorisation(auth_id: int, who: Who, cw: Runtime) -> dict[str, Any]:
    _biometric(who)
    with errors():
        return _one(cw, describe(cw.authorisations.get(auth_id), cw.authorisations.clock()))


@router.post("/authorisations/{auth_id}/approve")
def approve_authorisation(
    auth_id: int, who: Approver, cw: Runtime, request: Request
) -> dict[str, Any]:
    with errors():
        row = cw.authorisations.approve(who.username, auth_id, client_of(request))
    cw.sync_faces()  # a real-time one starts matching now, not at the next tick
    return _one(cw, describe(row, cw.authorisations.clock()))


@router.post("/authorisations/{auth_id}/revoke")
def revoke_authorisation(
    auth_id: int, body: RevokeIn, who: Who, cw: Runtime, request: Request
) -> dict[str, Any]:
    with errors():
        row = cw.authorisations.get(auth_id)
        if not has_permission(who.role, P.FACE_APPROVE) and row.created_by != who.username:
            raise Problem(403, "only an authority or the requester may revoke it")
        row = cw.authorisations.revoke(who.username, auth_id, body.reason, client_of(request))
    cw.sync_faces()  # stops matching and purges now
    return _one(cw, describe(cw.authorisations.get(auth_id), cw.authorisations.clock()))


@router.get("/authorisations/{auth_id}/use-log")
def use_log(
    auth_id: int,
    who: UseLogReader,
    cw: Runtime,
    request: Request,
    download: bool = False,
) -> Response:
    """Every use made under the authorisation (EU AI Act Art. 12(3)): start and end of use,
    the watchlists and their version hashes, each candidate match with the input that led
    to it, and who verified it. Entries are links of the tamper-evident audit chain."""
    with errors():
        log = cw.authorisations.use_log(auth_id)
    log["chain"] = {"verified": cw.audit.verify().ok}
    cw.audit.append(
        AuditRecord(
            actor=who.username,
            action="faces.use_log.export",
            target=target(auth_id),
            client=client_of(request),
            details={"entries": len(log["entries"])},
        )
    )
    headers = (
        {"Content-Disposition": f'attachment; filename="use-log-authorisation-{auth_id}.json"'}
        if download
        else {}
    )
    return Response(
        json.dumps(log, indent=1, ensure_ascii=False),
        media_type="application/json",
        headers=headers,
    )


# -- watchlists -------------------------------------------------------------------------------
class WatchlistIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=2, max_length=100)
    legal_basis: str = Field(min_length=3, max_length=2000)
    description: str = Field(default="", max_length=2000)


class PersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(min_length=1, max_length=200)
    notes: str = Field(default="", max_length=2000)


@router.get("/faces/watchlists")
def list_watchlists(who: Keeper, cw: Runtime) -> list[dict[str, Any]]:
    return [describe_watchlist(w) for w in cw.watchlists.all()]


@router.post("/faces/watchlists", status_code=201)
def create_watchlist(
    body: WatchlistIn, who: Keeper, cw: Runtime, request: Request
) -> dict[str, Any]:
    with errors():
        row = cw.watchlists.create(
            who.username, body.name, body.legal_basis, body.description, client_of(request)
        )
    return describe_watchlist(row)


@router.get("/faces/watchlists/{watchlist_id}")
def get_watchlist(watchlist_id: int, who: Keeper, cw: Runtime) -> dict[str, Any]:
    with errors():
        return cw.watchlists.get(watchlist_id)


@router.delete("/faces/watchlists/{watchlist_id}", status_code=204)
def delete_watchlist(watchlist_id: int, who: Keeper, cw: Runtime, request: Request) -> Response:
    with errors():
        cw.watchlists.delete(who.username, watchlist_id, client_of(request))
    return Response(status_code=204)


@router.post("/faces/watchlists/{watchlist_id}/persons", status_code=201)
def add_person(
    watchlist_id: int, body: PersonIn, who: Keeper, cw: Runtime, request: Request
) -> dict[str, Any]:
    with errors():
        row = cw.watchlists.add_person(
            who.username, watchlist_id, body.label, body.notes, client_of(request)
        )
    return {"id": row.id, "watchlist_id": row.watchlist_id, "label": row.label}


@router.delete("/faces/persons/{person_id}", status_code=204)
def remove_person(person_id: int, who: Keeper, cw: Runtime, request: Request) -> Response:
    with errors():
        cw.watchlists.remove_person(who.username, person_id, client_of(request))
    return Response(status_code=204)


@router.post("/faces/persons/{person_id}/enrolments", status_code=201)
async def enrol(
    person_id: int,
    who: Keeper,
    cw: Runtime,
    request: Request,
    image: Annotated[UploadFile, File(description="a photo with exactly one clear face")],
    source: Annotated[str, Form(description="where the image comes from")] = "",
    legal_basis: Annotated[str, Form(description="why it may be enrolled")] = "",
) -> dict[str, Any]:
    """Enrol one image. Refused (422, with the reason) without provenance, or when the
    image has no face, several faces, or a face too small or blurred."""
    from starlette.concurrency import run_in_threadpool

    from citywatch.events.faces import describe_enrolment

    data = await _upload(image, "image")
    with errors():
        row = await run_in_threadpool(
            cw.watchlists.enrol,
            who.username,
            person_id,
            data,
            source,
            legal_basis,
            client_of(request),
        )
    return describe_enrolment(row)


@router.delete("/faces/enrolments/{enrolment_id}", status_code=204)
def remove_enrolment(enrolment_id: int, who: Keeper, cw: Runtime, request: Request) -> Response:
    with errors():
        cw.watchlists.remove_enrolment(who.username, enrolment_id, client_of(request))
    return Response(status_code=204)


@router.get("/faces/enrolments/{enrolment_id}/image.jpg")
def enrolment_image(enrolment_id: int, who: Who, cw: Runtime) -> FileResponse:
    if not (has_permission(who.role, P.FACE_WATCHLIST) or has_permission(who.role, P.FACE_REVIEW)):
        raise Problem(403, f"your role ({who.role}) may not see enrolled faces")
    with errors():
        row = cw.watchlists.enrolment(enrolment_id)
    return _jpeg(cw, row.image)


def _jpeg(cw: Any, rel: str | None) -> FileResponse:
    path = cw.settings.data_dir / rel if rel else None
    if path is None or not path.is_file():
        raise Problem(404, "image not found (deleted by retention or purge)")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


# -- candidate matches: four-eyes review ---------------------------------------------------------
class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["confirm", "reject"]
    note: str = Field(default="", max_length=500)


@router.get("/faces/candidates")
def list_candidates(
    who: Reviewer,
    cw: Runtime,
    status: Literal["pending", "confirmed", "rejected"] | None = "pending",
    authorisation_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    return cw.face_matcher.candidates(status, authorisation_id, who.camera_ids, limit)


@router.get("/faces/candidates/{candidate_id}/crop.jpg")
def candidate_crop(candidate_id: int, who: Reviewer, cw: Runtime) -> FileResponse:
    with errors():
        row = cw.face_matcher.candidate(candidate_id)
    check_camera(who, row.camera_id)
    return _jpeg(cw, row.crop)


@router.post("/faces/candidates/{candidate_id}/review")
def review_candidate(
    candidate_id: int, body: ReviewIn, who: Reviewer, cw: Runtime, request: Request
) -> dict[str, Any]:
    """Confirm or reject a candidate match. Two different reviewers must confirm it before
    it becomes an alert; one rejection closes it."""
    with errors():
        row = cw.face_matcher.candidate(candidate_id)
        check_camera(who, row.camera_id)
        row = cw.face_matcher.review(
            who.username, candidate_id, body.decision, body.note, client_of(request)
        )
    return describe_candidate(row)


# -- retrospective search by photo ----------------------------------------------------------------
@router.post("/faces/searches", status_code=202)
async def start_search(
    who: Requester,
    cw: Runtime,
    request: Request,
    probe: Annotated[UploadFile, File(description="a photo of the person sought")],
    authorisation_id: Annotated[int, Form()],
    camera_ids: Annotated[str, Form(description="comma-separated camera ids")],
    start: Annotated[str, Form(description="footage from (ISO 8601 or epoch seconds)")],
    end: Annotated[str, Form(description="footage to")],
    purpose: Annotated[str, Form()] = "",
    case_ref: Annotated[str, Form()] = "",
) -> dict[str, Any]:
    from starlette.concurrency import run_in_threadpool

    data = await _upload(probe, "probe")
    cams = [c.strip() for c in camera_ids.split(",") if c.strip()]
    for c in cams:
        check_camera(who, c)
    with errors():
        row = await run_in_threadpool(
            cw.face_search.create,
            who.username,
            authorisation_id,
            cams,
            parse_time(start, "start"),
            parse_time(end, "end"),
            data,
            purpose,
            case_ref,
            client_of(request),
        )
    return describe_search(row)


@router.get("/faces/searches")
def list_searches(who: Requester, cw: Runtime) -> list[dict[str, Any]]:
    return [describe_search(r) for r in cw.face_search.all()]


@router.get("/faces/searches/{search_id}")
def get_search(search_id: int, who: Requester, cw: Runtime) -> dict[str, Any]:
    with errors():
        return describe_search(cw.face_search.get(search_id))


@router.get("/faces/searches/{search_id}/results")
def search_results(
    search_id: int,
    who: Requester,
    cw: Runtime,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    with errors():
        row = cw.face_search.get(search_id)
        results = cw.face_search.results(search_id, limit)
    cw.audit.append(
        AuditRecord(
            actor=who.username,
            action="faces.search.view",
            target=target(row.authorisation_id),
            purpose=row.purpose,
            client=client_of(request),
            details={"search": search_id, "results": len(results), "case": row.case_ref},
        )
    )
    return {
        "search": describe_search(row),
        "threshold": cw.face_threshold(),
        "results": results,
    }


@router.get("/faces/searches/{search_id}/appearances/{appearance_id}/crop.jpg")
def appearance_crop(search_id: int, appearance_id: int, who: Requester, cw: Runtime) -> Any:
    with errors():
        row = cw.face_search.appearance(search_id, appearance_id)
    return _jpeg(cw, row.crop)


@router.get("/faces/searches/{search_id}/probe.jpg")
def probe_image(search_id: int, who: Requester, cw: Runtime) -> FileResponse:
    with errors():
        row = cw.face_search.get(search_id)
    return _jpeg(cw, row.probe_image)


@router.post("/faces/searches/{search_id}/cancel")
def cancel_search(search_id: int, who: Requester, cw: Runtime, request: Request) -> dict[str, Any]:
    with errors():
        cw.face_search.cancel(who.username, search_id, client_of(request))
        return describe_search(cw.face_search.get(search_id))


# -- cases ----------------------------------------------------------------------------------------
class CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference: str = Field(min_length=2, max_length=100)
    title: str = Field(default="", max_length=500)


class CaseItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["plate_read", "alert", "face_search"]
    ref_id: int
    note: str = Field(default="", max_length=2000)


@router.get("/cases")
def list_cases(who: CaseManager, cw: Runtime, open_only: bool = False) -> list[dict[str, Any]]:
    return [describe_case(c) for c in cw.cases.all(include_closed=not open_only)]


@router.post("/cases", status_code=201)
def open_case(body: CaseIn, who: CaseManager, cw: Runtime, request: Request) -> dict[str, Any]:
    with errors():
        return describe_case(
            cw.cases.open(who.username, body.reference, body.title, client_of(request))
        )


@router.get("/cases/{case_id}")
def get_case(case_id: int, who: CaseManager, cw: Runtime) -> dict[str, Any]:
    with errors():
        case, items = cw.cases.get(case_id)
    return describe_case(case, items)


@router.post("/cases/{case_id}/close")
def close_case(case_id: int, who: CaseManager, cw: Runtime, request: Request) -> dict[str, Any]:
    with errors():
        return describe_case(cw.cases.close(who.username, case_id, client_of(request)))


@router.post("/cases/{case_id}/items", status_code=201)
def attach(
    case_id: int, body: CaseItemIn, who: CaseManager, cw: Runtime, request: Request
) -> dict[str, Any]:
    with errors():
        cw.cases.attach(
            who.username, case_id, body.kind, body.ref_id, body.note, client_of(request)
        )
        case, items = cw.cases.get(case_id)
    return describe_case(case, items)


@router.delete("/cases/{case_id}/items/{kind}/{ref_id}", status_code=204)
def detach(
    case_id: int, kind: str, ref_id: int, who: CaseManager, cw: Runtime, request: Request
) -> Response:
    with errors():
        cw.cases.detach(who.username, case_id, kind, ref_id, client_of(request))
    return Response(status_code=204)

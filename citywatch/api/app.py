"""The FastAPI application: versioned API under /api/v1, the web page, /healthz."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from citywatch import __version__
from citywatch.api import problems
from citywatch.api.routes import (
    audit,
    auth,
    cameras,
    events,
    faces,
    live,
    plates,
    recordings,
    system,
    users,
)
from citywatch.runtime import CityWatch

STATIC = Path(__file__).resolve().parent.parent / "web" / "static"


def create_app(cw: CityWatch, manage_runtime: bool = True) -> FastAPI:
    """Build the app around a runtime. With `manage_runtime`, the app starts the cameras
    and the retention sweeper on start-up and stops them on shutdown."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            await run_in_threadpool(cw.start)
        try:
            yield
        finally:
            if manage_runtime:
                await run_in_threadpool(cw.stop)

    app = FastAPI(
        title="CityWatch",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.cw = cw
    problems.install(app)

    v1 = APIRouter(prefix="/api/v1")
    for module in (auth, cameras, recordings, live, events, plates, faces, users, audit, system):
        v1.include_router(module.router)
    app.include_router(v1)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app

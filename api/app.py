"""The HTTP application: FastAPI under /api/v1, problem+json errors, OpenAPI at /openapi.json and /docs."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Annotated, Any, AsyncIterator

import anyio.to_thread
from fastapi import FastAPI, HTTPException, Path
from fastapi.responses import PlainTextResponse

from api import accesslog, docs, limits, problems, web
from api.deps import AnyUser, Core
from api.routes import admin, auth, cases, children, inbox, operations, person_copy, referrals, reports, tasks
from pathway.bootstrap import Forlop
from pathway.errors import DefinitionVersionMissing
from pathway.machine import mermaid
from pathway.scheduler import build_scheduler
from pathway.store.migrate import readiness

PUBLIC = {"x-public": True}


def create_app(core: Forlop) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The sizing rule of the pool (README, "Connections"): a worker runs at most as many requests at once as its
        # pool keeps connections. Sync routes run in anyio's threads (40 by default); with more threads than pooled
        # connections, a burst takes overflow connections, each opened and closed again (at 32 clients on two
        # workers, PostgreSQL opened 27 connections a second). Requests beyond it wait their turn in the event loop.
        anyio.to_thread.current_default_thread_limiter().total_tokens = core.settings.db_pool_size
        scheduler = build_scheduler(core) if core.settings.scheduler == "embedded" else None
        if scheduler is not None:
            scheduler.start()
        yield
        if scheduler is not None:
            scheduler.shutdown(wait=True)  # let a running scan or delivery finish
        core.close()

    app = FastAPI(
        title="Forløp", version="0.1.0", lifespan=lifespan, responses=problems.DOCUMENTED,
        openapi_url=None, docs_url=None, redoc_url=None,  # served by api.docs: no CDN, admins only in production
        description="Care pathways for people exposed to violence in close relationships. "
                    "Errors are RFC 9457 problem+json. Sign in at /api/v1/auth/token.",
    )
    app.state.core = core
    if core is not None:
        core.identity  # read the identity providers' file (FORLOP_OIDC_CONFIG) now, not at the first sign-in
    accesslog.install()  # no query strings in the server's access log
    problems.install(app)
    limits.install(app)  # body, header and URL limits before anything reads the request
    for module in (auth, cases, children, operations, person_copy, tasks, referrals, inbox, reports, admin):
        app.include_router(module.router)
    docs.install(app)  # before the pages' /static mount
    web.install(app)

    @app.get("/healthz", tags=["operations"], openapi_extra=PUBLIC, summary="Alive")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], openapi_extra=PUBLIC, summary="Database reachable, migrations current")
    def readyz() -> dict[str, Any]:
        not_ready = readiness(core.engine)
        if not_ready:
            raise HTTPException(status_code=503, detail=not_ready)
        return {"status": "ready"}

    @app.get("/api/v1/pathways", tags=["pathways"], summary="Registered pathway definition versions")
    def pathways(core: Core, user: AnyUser) -> list[dict[str, Any]]:
        return [{"id": p, "version": v, "sha256": h} for p, v, h in core.catalog.versions()]

    @app.get("/api/v1/pathways/{pathway_id}/{version}/diagram", tags=["pathways"], response_class=PlainTextResponse,
             summary="A pathway version as a Mermaid state diagram")
    def diagram(core: Core, user: AnyUser, pathway_id: str, version: Annotated[int, Path(ge=1, le=2**31 - 1)],
                lang: str = "nb") -> str:
        try:
            definition = core.catalog.resolve(pathway_id, version)
        except DefinitionVersionMissing:
            raise HTTPException(status_code=404, detail="no such pathway version") from None
        return mermaid(definition, lang="en" if lang == "en" else "nb")

    return app


logging.getLogger("forlop").setLevel(logging.INFO)

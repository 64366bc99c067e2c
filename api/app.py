"""The HTTP application. For now: health, readiness and the pathway definitions (no case data yet)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse

from api import problems
from pathway.bootstrap import Forlop
from pathway.errors import DefinitionVersionMissing
from pathway.machine import mermaid
from pathway.scheduler import build_scheduler
from pathway.store.migrate import is_current


def create_app(core: Forlop) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        scheduler = build_scheduler(core) if core.settings.scheduler == "embedded" else None
        if scheduler is not None:
            scheduler.start()
        yield
        if scheduler is not None:
            scheduler.shutdown(wait=True)  # let a running scan or delivery finish
        core.close()

    app = FastAPI(title="Forløp", version="0.1.0", lifespan=lifespan, openapi_url="/openapi.json")
    problems.install(app)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> dict[str, Any]:
        try:
            with core.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            current = is_current(core.engine)
        except sa.exc.SQLAlchemyError:
            raise HTTPException(status_code=503, detail="database unreachable") from None
        if not current:
            raise HTTPException(status_code=503, detail="database migrations are not current")
        return {"status": "ready"}

    @app.get("/api/v1/pathways", tags=["pathways"])
    def pathways() -> list[dict[str, Any]]:
        return [{"id": p, "version": v, "sha256": h} for p, v, h in core.catalog.versions()]

    @app.get("/api/v1/pathways/{pathway_id}/{version}/diagram", tags=["pathways"], response_class=PlainTextResponse)
    def diagram(pathway_id: str, version: int, lang: str = "nb") -> str:
        try:
            definition = core.catalog.resolve(pathway_id, version)
        except DefinitionVersionMissing:
            raise HTTPException(status_code=404, detail="no such pathway version") from None
        return mermaid(definition, lang="en" if lang == "en" else "nb")

    return app

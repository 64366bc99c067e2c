"""Idempotency-Key for POSTs: a retried request gets the first answer instead of being applied twice."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Header, HTTPException, Request
from fastapi.responses import JSONResponse

from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway.store.engine import WRITE
from pathway.store.tables import idempotency_t

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", max_length=200, description="any unique string per intended change")
]


def idempotent(core: Forlop, user: User, request: Request, key: str | None, body: Any,
               run: Callable[[], JSONResponse]) -> JSONResponse:
    if key is None:
        return run()
    fingerprint = hashlib.sha256(json.dumps([request.url.path, body], sort_keys=True, default=str).encode()).hexdigest()
    with core.engine.connect() as conn:
        seen = conn.execute(sa.select(idempotency_t).where(
            idempotency_t.c.username == user.username, idempotency_t.c.key == key)).first()
    if seen is not None:
        if seen.fingerprint != fingerprint:
            raise HTTPException(422, "Idempotency-Key: this key was used for a different request")
        headers = {"Idempotency-Replayed": "true"}
        if isinstance(seen.body, dict) and isinstance(seen.body.get("version"), int):
            headers["ETag"] = f'"{seen.body["version"]}"'  # a case answer's ETag is its version: answer as the first did
        return JSONResponse(seen.body, status_code=seen.status, headers=headers)
    response = run()
    try:
        with core.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            conn.execute(sa.insert(idempotency_t).values(
                username=user.username, key=key, method=request.method, path=request.url.path[:500],
                fingerprint=fingerprint, status=response.status_code, body=json.loads(bytes(response.body)),
                created_at=datetime.now(timezone.utc)))
    except sa.exc.IntegrityError:
        pass  # a concurrent retry stored it first; its change was refused by the version check
    return response

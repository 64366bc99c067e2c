"""Idempotency-Key for POSTs: a retried request gets the first answer instead of being applied twice."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header, HTTPException, Request
from fastapi.responses import JSONResponse

from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway.store.access import Writer
from pathway.store.idempotency import KeyedRequest, answer_for, claim, store_answer

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", max_length=200, description="any unique string per intended change")
]


def idempotent(core: Forlop, user: User, request: Request, key: str | None, body: Any,
               run: Callable[[Writer | None], JSONResponse], *,
               replay: Callable[[], JSONResponse] | None = None,
               authorize: Callable[[], object] | None = None) -> JSONResponse:
    """Run a POST once per key. With ``replay``, the key is claimed inside the change's own transaction (``run``
    gets the writer to pass on): if the answer is then lost (a killed worker, a dropped connection), the retry
    finds the claim, knows the change was made, and answers with ``replay`` instead of refusing a stale version.
    ``authorize`` is asked before a stored answer is given again (it raises if the caller may no longer see it)."""
    if key is None:
        return run(None)
    fingerprint = hashlib.sha256(json.dumps([request.url.path, body], sort_keys=True, default=str).encode()).hexdigest()
    keyed = KeyedRequest(username=user.username, key=key, method=request.method, path=request.url.path,
                         fingerprint=fingerprint)
    seen = answer_for(core.engine, keyed, keys=core.keys)
    if seen is not None:
        if seen.fingerprint != fingerprint:
            raise HTTPException(422, "Idempotency-Key: this key was used for a different request")
        if seen.body is None and replay is not None:  # claimed with the change; the first answer never got out
            response = replay()
            response.headers["Idempotency-Replayed"] = "true"
            return response
        if authorize is not None:
            authorize()
        headers = {"Idempotency-Replayed": "true"}
        if isinstance(seen.body, dict) and isinstance(seen.body.get("version"), int):
            headers["ETag"] = f'"{seen.body["version"]}"'  # a case answer's ETag is its version: answer as the first did
        return JSONResponse(seen.body, status_code=seen.status, headers=headers)
    response = run(claim(keyed) if replay is not None else None)
    store_answer(core.engine, keyed, status=response.status_code, body=json.loads(bytes(response.body)),
                 claimed=replay is not None, keys=core.keys)
    return response

"""Limits every request meets before the app sees it: body size, header size and count, a UTF-8 URL.

A body is counted as it arrives, so a 10 MB upload (with or without Content-Length, chunked or not) is refused
after the first megabyte instead of being read into memory. Refusals are problem+json that name the limit.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem

# The largest body the API takes is a person record with a reason: a few kilobytes. A megabyte is generous.
MAX_BODY_BYTES = 1024 * 1024
# A bearer token and the usual browser headers fit many times over; uvicorn's own limit (h11, 16 KiB of
# incomplete headers) only applies when the headers arrive over several reads, so this one is the sure one.
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100


TOO_LARGE = "/problems/request-too-large"
HEADERS_TOO_LARGE = "/problems/request-headers-too-large"
MALFORMED = "/problems/malformed-request"


def install(app: FastAPI) -> None:
    """Put the limits in front of ``app`` and answer a body that passes its limit with 413 problem+json."""
    app.add_middleware(RequestLimits)

    @app.exception_handler(RequestTooLarge)
    async def _too_large(request: Request, exc: RequestTooLarge) -> JSONResponse:
        return problem(413, str(exc.detail), instance=request.url.path, type=TOO_LARGE, limit=exc.limit,
                       headers={"Connection": "close"})


class RequestTooLarge(HTTPException):
    """Raised from ``receive`` when a body passes the limit; an HTTPException, so FastAPI's body parsing lets it
    through to the problem+json handler instead of answering 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes")
        self.limit = limit


class RequestLimits:
    """ASGI middleware: refuse oversized bodies (413), oversized or too many headers (431), a malformed
    Content-Length (400) and a path or query string that is not UTF-8 once percent-decoded (400)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int = MAX_BODY_BYTES,
                 max_header_bytes: int = MAX_HEADER_BYTES, max_headers: int = MAX_HEADERS) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await self._answer(scope, receive, send, *refusal)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise RequestTooLarge(self.max_body_bytes)
            return message

        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except RequestTooLarge as exc:
            # Normally the app's HTTPException handler answers; this is for a body read outside a route.
            if started:
                raise
            await self._answer(scope, receive, send, 413, TOO_LARGE, str(exc.detail), {"limit": exc.limit})

    def _refusal(self, scope: Scope) -> tuple[int, str, str, dict[str, int]] | None:
        headers = scope.get("headers") or []
        if len(headers) > self.max_headers:
            return 431, HEADERS_TOO_LARGE, f"more than {self.max_headers} request headers", {"limit": self.max_headers}
        if sum(len(name) + len(value) + 4 for name, value in headers) > self.max_header_bytes:
            return 431, HEADERS_TOO_LARGE, f"the request headers are larger than the limit of " \
                f"{self.max_header_bytes} bytes", {"limit": self.max_header_bytes}
        lengths = [value for name, value in headers if name.lower() == b"content-length"]
        if lengths:
            if len(set(lengths)) != 1 or not lengths[0].isdigit() or len(lengths[0]) > 18:
                return 400, MALFORMED, "Content-Length: not a number of bytes", {}
            if int(lengths[0]) > self.max_body_bytes:
                return 413, TOO_LARGE, f"the request body is larger than the limit of {self.max_body_bytes} bytes", \
                    {"limit": self.max_body_bytes}
        for part, raw in (("path", scope.get("raw_path")), ("query string", scope.get("query_string"))):
            if raw and not _utf8(unquote_to_bytes(raw)):
                return 400, MALFORMED, f"the URL's {part} is not valid UTF-8 once percent-decoded", {}
        return None

    @staticmethod
    async def _answer(scope: Scope, receive: Receive, send: Send, status: int, type: str, detail: str,
                      extra: dict[str, int]) -> None:
        # The instance is the path as the server decoded it (invalid bytes already replaced), never the query.
        response = problem(status, detail, instance=scope.get("path", ""), type=type,
                           headers={"Connection": "close"}, **extra)
        await response(scope, receive, send)


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True

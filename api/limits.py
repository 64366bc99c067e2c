"""Limits every request meets before the app sees it: body size, header size and count, UTF-8 text.

A body is counted (and a JSON or form body decoded) as it arrives, so a 10 MB upload, with or without
Content-Length, chunked or not, is refused after the first megabyte instead of being read into memory.
Refusals are problem+json that name the limit.
"""

from __future__ import annotations

import codecs
from typing import Any
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
# Bodies that are text by their media type: JSON must be UTF-8 (RFC 8259), and so are the forms we take.
# Python's json.loads would otherwise take an encoded surrogate, and Starlette's form parser decodes as Latin-1.
TEXT_BODIES = ("application/json", "application/x-www-form-urlencoded")


def install(app: FastAPI) -> None:
    """Put the limits in front of ``app``; a body refused while the app reads it is answered as problem+json."""
    app.add_middleware(RequestLimits)

    @app.exception_handler(BodyRefused)
    async def _refused(request: Request, exc: BodyRefused) -> JSONResponse:
        return exc.answer(request.url.path)


class BodyRefused(HTTPException):
    """Raised from ``receive`` while the app reads a body. An HTTPException, so FastAPI's body parsing passes it
    on to the handler above instead of answering a generic 400."""

    def __init__(self, status: int, type: str, detail: str, **extra: Any) -> None:
        super().__init__(status, detail)
        self.type, self.extra = type, extra

    def answer(self, instance: str) -> JSONResponse:
        return problem(self.status_code, str(self.detail), instance=instance, type=self.type,
                       headers={"Connection": "close"}, **self.extra)


class RequestLimits:
    """ASGI middleware: refuse oversized bodies (413), oversized or too many headers (431), a malformed
    Content-Length (400), a JSON or form body that is not UTF-8 (400) and a path or query string that is not
    UTF-8 once percent-decoded (400)."""

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
            await refusal.answer(scope.get("path", ""))(scope, receive, send)
            return
        received = 0
        decoder = codecs.getincrementaldecoder("utf-8")() if _is_text(scope) else None

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                if received + len(chunk) > self.max_body_bytes:
                    raise self._too_large()
                if decoder is not None:
                    try:
                        decoder.decode(chunk, final=not message.get("more_body", False))
                    except UnicodeDecodeError as exc:
                        raise BodyRefused(400, MALFORMED, f"the request body is not valid UTF-8 (byte "
                                                          f"{received + max(exc.start, 0)})") from None
                received += len(chunk)
            return message

        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyRefused as exc:
            # Normally the app's handler answers; this is for a body read outside a route.
            if started:
                raise
            await exc.answer(scope.get("path", ""))(scope, receive, send)

    def _too_large(self) -> BodyRefused:
        return BodyRefused(413, TOO_LARGE, f"the request body is larger than the limit of {self.max_body_bytes} bytes",
                           limit=self.max_body_bytes)

    def _refusal(self, scope: Scope) -> BodyRefused | None:
        headers = scope.get("headers") or []
        if len(headers) > self.max_headers:
            return BodyRefused(431, HEADERS_TOO_LARGE, f"more than {self.max_headers} request headers",
                               limit=self.max_headers)
        if sum(len(name) + len(value) + 4 for name, value in headers) > self.max_header_bytes:
            return BodyRefused(431, HEADERS_TOO_LARGE, "the request headers are larger than the limit of "
                                                       f"{self.max_header_bytes} bytes", limit=self.max_header_bytes)
        lengths = [value for name, value in headers if name.lower() == b"content-length"]
        if lengths:
            if len(set(lengths)) != 1 or not lengths[0].isdigit() or len(lengths[0]) > 18:
                return BodyRefused(400, MALFORMED, "Content-Length: not a number of bytes")
            if int(lengths[0]) > self.max_body_bytes:
                return self._too_large()
        for part, raw in (("path", scope.get("raw_path")), ("query string", scope.get("query_string"))):
            if raw and not _utf8(unquote_to_bytes(raw)):
                return BodyRefused(400, MALFORMED, f"the URL's {part} is not valid UTF-8 once percent-decoded")
        return None


def _is_text(scope: Scope) -> bool:
    for name, value in scope.get("headers") or []:
        if name.lower() == b"content-type":
            media, _, params = value.decode("latin-1").lower().partition(";")
            charset = params.partition("charset=")[2].strip(' "')
            return media.strip() in TEXT_BODIES and charset in ("", "utf-8", "utf8")
    return False


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True

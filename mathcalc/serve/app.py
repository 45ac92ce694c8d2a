"""The ASGI app of ``mathcalc serve`` (SPEC section 10): the page, its static files, the JSON API.

Routes:

- ``GET /``: the page (static/index.html; it reads ``?expression=…&wrt=…`` itself);
- ``GET /static/…``: its script, style and KaTeX (JS, CSS, fonts), all from the package;
- ``GET /api/info``: the version, what this mathcalc offers (backends, where, steps,
  structure) and the server's limits;
- ``POST /api/diff``: the derivative (SPEC 10's request and answer);
- ``POST /api/check``: the finite-difference check of that derivative (the page's button);
- ``POST /api/shapes``: the inferred shapes (shown next to the input as one types, so
  text that does not parse yet, its normal case, answers 200 with ``{"error": ...}``;
  a body that is not JSON is still 400).

Every POST body is read up to 64 KB and answered 413 beyond, before any
parsing; the work runs in the bounded process pool of pool.py with the time
limit (503 past it, the worker killed and replaced). Every response carries a
strict Content-Security-Policy (scripts, styles, fonts and connections from
this server only; no inline script) and ``nosniff``; JSON escapes ``<``,
``>`` and ``&`` as well, so no echo of user text can be read as markup. A
Host header other than the loopback names is refused while bound to loopback
(DNS rebinding), and a cross-origin POST is refused (another site's page
cannot make this server work).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import pool as P
from . import work
from .request import MAX_ORDER, job_from

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 64 * 1024
DEFAULT_TIMEOUT = 10.0
DEFAULT_WAIT = 10.0  # how long a request waits in line for a free worker before 503
LOOPBACK = ("127.0.0.1", "localhost", "::1")

CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "font-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


class SafeJSON(JSONResponse):
    """JSON whose strings cannot close a tag or start an entity, should anything read it as HTML."""

    def render(self, content) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        return text.encode("utf-8")


def _error(status: int, kind: str, message: str, headers: dict | None = None) -> Response:
    body = {"error": {"kind": kind, "message": message, "line": None, "column": None}}
    return SafeJSON(body, status_code=status, headers=headers)


# ---------------------------------------------------------------------------
# the guard in front of everything: headers, Host, Origin


def _host_only(value: str) -> str:
    """``127.0.0.1:8765`` -> ``127.0.0.1``; ``[::1]:8765`` -> ``::1``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware: security headers on every response; Host and Origin checks."""

    def __init__(self, app, allowed_hosts):
        self.app = app
        self.allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + HEADERS
            await send(message)

        if self.allowed is not None and _host_only(host) not in self.allowed:
            response = PlainTextResponse("this server answers only to its loopback address "
                                         "(Host header not allowed)", status_code=421)
            return await response(scope, receive, send_with_headers)
        origin = headers.get("origin")
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and origin is not None:
            if origin == "null" or urlsplit(origin).netloc.lower() != host.lower():
                response = _error(403, "Forbidden", "cross-origin requests are not accepted")
                return await response(scope, receive, send_with_headers)
        await self.app(scope, receive, send_with_headers)


# ---------------------------------------------------------------------------
# endpoints


class BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The body, never more than ``limit`` bytes of it in memory."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _endpoint(kind: str):
    async def endpoint(request: Request) -> Response:
        try:
            body = await _read_body(request)
        except BodyTooLarge:
            return _error(413, "PayloadTooLarge",
                          f"the request body is larger than {MAX_BODY // 1024} KB")
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as err:
            return _error(400, "MathcalcError", f"the request body is not JSON: {err}"[:300])
        # /api/shapes runs as one types: text that does not parse yet is its normal
        # case, answered 200 with the error (not a failed request).
        bad_input = 200 if kind == "shapes" else 400
        try:
            job = job_from(data, kind)
        except work.mc.MathcalcError as err:
            return SafeJSON({"error": work.error_json(err)}, status_code=bad_input)
        pool: P.Pool = request.app.state.pool
        try:
            answer = await pool.run(kind, job)
        except P.Busy as err:
            return _error(503, "Busy", str(err), headers={"retry-after": "1"})
        except (P.TimedOut, P.TooLarge, P.WorkerDied) as err:
            return _error(503, type(err).__name__, str(err))
        except P.PoolError as err:
            return _error(500, "InternalError", f"a bug in mathcalc, please report it: {err}")
        if "error" in answer:
            return SafeJSON(answer, status_code=bad_input)
        return SafeJSON(answer["ok"], headers={"cache-control": "no-store"})

    endpoint.__name__ = f"api_{kind}"
    return endpoint


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                        headers={"cache-control": "no-cache"})


async def info(request: Request) -> Response:
    pool: P.Pool = request.app.state.pool
    return SafeJSON({
        "version": work.mc.__version__,
        "features": work.features(),
        "limits": {"timeout_s": pool.timeout, "body_bytes": MAX_BODY, "max_order": MAX_ORDER,
                   "workers": pool.workers},
    })


# ---------------------------------------------------------------------------
# the app


def default_workers() -> int:
    """A few: at most 4, at most the number of cores (2 here)."""
    return max(1, min(4, os.cpu_count() or 1))


def create_app(*, timeout: float = DEFAULT_TIMEOUT, workers: int | None = None,
               host: str = "127.0.0.1", allowed_hosts=None, queue: int = 64,
               wait: float = DEFAULT_WAIT, memory: int | None = 2 << 30) -> Starlette:
    """The app. ``host`` is the address it is bound to: on a loopback address only the
    loopback names are accepted as Host (pass ``allowed_hosts`` to widen that)."""
    if allowed_hosts is None and host in LOOPBACK:
        allowed_hosts = LOOPBACK
    pool = P.Pool(work.handle, workers=workers or default_workers(), timeout=timeout,
                  queue=queue, wait=wait, memory=memory, preload=("mathcalc.serve.warm",))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await pool.start()
        try:
            yield
        finally:
            await pool.close()

    app = Starlette(routes=[
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/api/info", info, methods=["GET"]),
        Route("/api/diff", _endpoint("diff"), methods=["POST"]),
        Route("/api/check", _endpoint("check"), methods=["POST"]),
        Route("/api/shapes", _endpoint("shapes"), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ], lifespan=lifespan)
    app.state.pool = pool
    app.add_middleware(Guard, allowed_hosts=allowed_hosts)
    return app

"""Running the app: ``mathcalc serve`` binds a socket, prints the URL and serves until Ctrl-C."""

from __future__ import annotations

import socket
import sys
import threading
import webbrowser

from .app import DEFAULT_TIMEOUT, create_app


class ServeError(Exception):
    """The server could not start (port taken, address not available); str says why."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket: bound here, so a port in use is a plain message, and port 0
    gives a free port whose number is known before the server starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        hint = " (try another --port, or --port 0 for a free one)" if port else ""
        raise ServeError(f"cannot listen on {host}:{port}: {err.strerror or err}{hint}") from None
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


MAX_CONNECTIONS = 256  # beyond this uvicorn answers 503 itself: memory stays bounded


def uvicorn_server(app, log_level: str = "warning"):
    """The uvicorn server for the app: lifespan on (it starts and stops the worker pool),
    a bounded number of connections, 5 s for requests in flight when stopped."""
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on",
                                         limit_concurrency=MAX_CONNECTIONS,
                                         timeout_graceful_shutdown=5))


def run(host: str = "127.0.0.1", port: int = 8765, open_browser: bool = False,
        timeout: float = DEFAULT_TIMEOUT, workers: int | None = None, log_level: str = "warning",
        out=None) -> int:
    """Serve until interrupted; the exit status (0 after Ctrl-C, 1 if it could not start)."""
    out = out or sys.stdout
    sock = bind(host, port)
    url = url_of(sock, host)
    app = create_app(timeout=timeout, workers=workers, host=host)
    server = uvicorn_server(app, log_level)
    print(f"mathcalc serve: {url}  (Ctrl-C stops it)", file=out, flush=True)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled, after shutting down
        pass
    finally:
        sock.close()
    if not server.started:
        print("mathcalc serve: the server did not start (see the messages above)", file=out,
              flush=True)
        return 1
    print("mathcalc serve: stopped", file=out, flush=True)
    return 0

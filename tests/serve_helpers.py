"""A real uvicorn server of the page on a free loopback port, for test_serve.py and test_browser.py.

    with running_server(timeout=1.5, workers=2) as server:
        httpx.get(server.url + "api/info")

One server per test module (start-up is about a second: the worker
processes fork from a fork server that imports mathcalc once). The server
runs in a thread of the test process; its workers are processes.

``handler`` below is a stand-in for mathcalc's work, for the pool's own tests
(sleeping past the time limit, allocating past the memory limit, dying).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

# ---------------------------------------------------------------------------
# the server


class Running:
    def __init__(self, app, server, url):
        self.app, self.server, self.url = app, server, url

    @property
    def pool(self):
        return self.app.state.pool


@contextlib.contextmanager
def running_server(**options):
    from mathcalc.serve.app import create_app
    from mathcalc.serve.server import bind, url_of, uvicorn_server

    sock = bind("127.0.0.1", 0)
    app = create_app(host="127.0.0.1", **options)
    server = uvicorn_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        server.should_exit = True
        thread.join(10)
        sock.close()
        raise RuntimeError("the test server did not start")
    try:
        yield Running(app, server, url_of(sock, "127.0.0.1"))
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


# ---------------------------------------------------------------------------
# a stand-in handler for the pool's tests


def handler(task: str, payload):
    if task == "echo":
        return payload
    if task == "sleep":
        time.sleep(payload)
        return "slept"
    if task == "allocate":  # hold `payload` bytes, touched so that they are resident
        block = bytearray(payload)
        for k in range(0, len(block), 4096):
            block[k] = 1
        time.sleep(30)
        return len(block)
    if task == "die":
        os._exit(7)
    if task == "raise":
        raise KeyError(payload)
    if task == "pid":
        return os.getpid()
    raise ValueError(task)

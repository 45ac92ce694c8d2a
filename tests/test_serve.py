"""The server of `mathcalc serve` (SPEC section 10), over real HTTP to a real uvicorn.

One server for the module (two workers, the default 10 s limit; a second one
with a 1.5 s limit for the 503 test): every status of the contract (200, 400 with each kind, 413, 503 and the server going on), answers
checked for their mathematics (mc.equivalent against the closed form, not
strings), a 10,000-deep expression, 50 concurrent requests each answered with
its own derivative, the headers (CSP, nosniff), the escaping of echoed text,
and the loopback guards. The pool's own limits (time, memory, a dying worker)
are tested with a stand-in handler (serve_helpers.handler). The CLI's
`mathcalc serve` is started once as a subprocess and stopped with Ctrl-C.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

import mathcalc as mc  # noqa: E402
from mathcalc.serve import pool as P  # noqa: E402
from mathcalc.serve.request import Job, job_from, parse_shapes_text  # noqa: E402
from serve_helpers import handler, running_server  # noqa: E402

TIMEOUT = 1.5  # the time limit of the `short` server (10 s by default)
# Slow for a reason, not by a planted sleep: a third derivative of a product of
# ten matrices takes well over a minute; killed at TIMEOUT.
SLOW = {"expression": "sum(exp(A*A*A*A*A*A*A*A*A*A))", "wrt": "A", "order": 3}
STATIC = Path(mc.__file__).resolve().parent / "serve" / "static"


@pytest.fixture(scope="module")
def server():
    """The server as `mathcalc serve` runs it (10 s limit), with two workers."""
    with running_server(workers=2) as running:
        yield running


@pytest.fixture(scope="module")
def short():
    """A server with a short time limit, for the 503 test."""
    with running_server(timeout=TIMEOUT, workers=2) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def diff(client, **body):
    return client.post("/api/diff", json=body)


# ---------------------------------------------------------------------------
# 200: the answer's fields, and its mathematics


def test_diff_answers_every_field_of_the_contract(client):
    r = diff(client, expression="x'*A*x + c'*x", wrt="x")
    assert r.status_code == 200, r.text
    body = r.json()
    for key in ("result", "latex", "shape", "variables", "where", "code"):
        assert key in body, key
    assert mc.equivalent(mc.parse(body["result"], x=("n",), A=("n", "n"), c=("n",)),
                         mc.parse("(A + A')*x + c", x=("n",), A=("n", "n"), c=("n",)))
    assert body["shape"] == ["n"]
    assert body["variables"] == {"x": ["n"], "A": ["n", "n"], "c": ["n"]}
    assert body["latex"] == mc.latex(mc.diff("x'*A*x + c'*x", "x"))
    assert "def df_dx" in body["code"]
    assert r.headers["content-type"].startswith("application/json")


def test_shapes_as_the_spec_object_and_as_the_page_text_agree(client):
    spec = diff(client, expression="norm2(A*x - y)^2", wrt="x",
                shapes={"A": ["m", "n"], "x": ["n"], "y": ["m"]}).json()
    text = diff(client, expression="norm2(A*x - y)^2", wrt="x", shapes="A=m,n; x=n; y=m").json()
    assert spec["result"] == text["result"]
    assert spec["variables"] == {"A": ["m", "n"], "x": ["n"], "y": ["m"]}
    shapes = dict(A=("m", "n"), x=("n",), y=("m",))
    assert mc.equivalent(mc.parse(spec["result"], **shapes), mc.parse("2*A'*(A*x - y)", **shapes))


def test_generated_code_runs_and_agrees_with_finite_differences(client):
    import numpy as np

    r = diff(client, expression="sum(max(0, W*x + b))", wrt="W", shapes={"W": [3, 2], "x": [2], "b": [3]})
    assert r.status_code == 200, r.text
    body = r.json()
    namespace = {}
    exec(compile(body["code"], "<generated>", "exec"), namespace)  # the server's output, not user text
    rng = np.random.default_rng(1)
    W, x, b = rng.normal(size=(3, 2)), rng.normal(size=2), rng.normal(size=3)
    got = namespace["df_dW"](W=W, x=x, b=b)

    def f(W):
        return np.maximum(0, W @ x + b).sum()

    h, fd = 1e-6, np.zeros((3, 2))
    for i in range(3):
        for j in range(2):
            e = np.zeros((3, 2))
            e[i, j] = h
            fd[i, j] = (f(W + e) - f(W - e)) / (2 * h)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)


def test_second_order_and_its_shape(client):
    body = diff(client, expression="x'*A*x", wrt="x", order=2, shapes="x=3; A=3,3").json()
    assert body["shape"] == [3, 3]
    assert mc.equivalent(mc.parse(body["result"], x=(3,), A=(3, 3)), mc.parse("A + A'", A=(3, 3)))


def test_check_endpoint_runs_the_finite_difference_check(client):
    r = client.post("/api/check", json={"expression": "logdet(X)", "wrt": "X"})
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True and r.json()["max_rel_error"] < 1e-5


def test_shapes_endpoint_infers_the_shapes(client):
    r = client.post("/api/shapes", json={"expression": "x'*A*x + c'*x"})
    assert r.json()["variables"] == {"x": ["n"], "A": ["n", "n"], "c": ["n"]}
    assert r.json()["shape"] == []


def test_shapes_endpoint_answers_text_that_does_not_parse_yet_with_its_error(client):
    # It runs as one types: an unfinished expression is its normal case, not a failed request.
    r = client.post("/api/shapes", json={"expression": "x'*A*"})
    assert r.status_code == 200 and r.json()["error"]["kind"] == "ParseError"
    r = client.post("/api/shapes", json={"expression": "x'*x", "shapes": "x=n,"})
    assert r.status_code == 200 and r.json()["variables"] == {"x": ["n"]}
    assert client.post("/api/shapes", content=b"{", headers={"content-type": "application/json"}
                       ).status_code == 400


def test_an_output_too_long_to_show_is_left_out_with_a_note(monkeypatch):
    from mathcalc.serve import work

    monkeypatch.setattr(work, "MAX_FIELD", 12)
    answer = work.handle("diff", Job("sum(tanh(W*x + b))", "W"))["ok"]
    assert answer["result"] == "" and "characters" in answer["notes"]["result"]
    assert answer["shape"] == ["m", "n"]  # the rest is still there


def test_where_steps_and_backends_follow_what_this_mathcalc_offers(client):
    shapes = {"V": ["k", "m"], "W": ["m", "n"], "x": ["n"], "b": ["m"]}
    r = diff(client, expression="sum(tanh(V*tanh(W*x + b)))", wrt="W", shapes=shapes)
    assert r.status_code == 200, r.text
    body = r.json()
    notes = body["notes"]
    env = {k: tuple(v) for k, v in shapes.items()}
    if hasattr(mc, "where"):
        assert body["where"] and body["where_latex"]
        assert mc.equivalent(mc.parse(body["where"], **env), mc.parse(body["result"], **env))
    else:
        assert body["where"] == "" and "mc.where" in notes["where"]
    if hasattr(mc, "explain"):
        assert body["steps"] and body["steps_latex"]
    else:
        assert body["steps"] == "" and "mc.explain" in notes["steps"]
    info = client.get("/api/info").json()
    assert info["features"]["backends"][0] == "numpy"
    for backend in info["features"]["backends"]:
        r = diff(client, expression="x'*A*x", wrt="x", backend=backend)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["backend"] == backend
        if backend == "numpy" or answer["code"]:
            assert "def df_dx" in answer["code"] and f"import {backend}" in answer["code"]
        else:  # a backend this machine cannot write for says why, in the notes
            assert backend in answer["notes"]["code"]


def test_structure_when_mathcalc_has_it(client):
    r = diff(client, expression="-logdet(S)/2 - (x - u)'*inv(S)*(x - u)/2", wrt="S",
             shapes="S=spd(n); x=n; u=n")
    if not (hasattr(mc, "spd") and hasattr(mc, "symmetric")):
        assert r.status_code == 400 and "mc.spd" in r.json()["error"]["message"]
        return
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["structure"] == {"S": "spd"}
    env = dict(S=mc.spd("n"), x=("n",), u=("n",))
    assert mc.equivalent(mc.parse(body["result"], **env),
                         mc.parse("(inv(S)*(x - u)*(x - u)'*inv(S) - inv(S))/2", **env))
    same = diff(client, expression="x'*S*x", wrt="x", shapes={"S": ["n", "n"], "x": ["n"]},
                structure={"S": "symmetric"}).json()
    assert mc.equivalent(mc.parse(same["result"], S=mc.symmetric("n"), x=("n",)),
                         mc.parse("2*S*x", S=mc.symmetric("n"), x=("n",)))


# ---------------------------------------------------------------------------
# 400: the error object


def _error(r, kind):
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["kind"] == kind, error
    assert set(error) >= {"kind", "message", "line", "column"}
    return error


def test_parse_error_has_line_column_and_the_caret(client):
    error = _error(diff(client, expression="x'*A*x +", wrt="x"), "ParseError")
    assert (error["line"], error["column"]) == (1, 9)
    lines = error["message"].split("\n")
    source, caret = lines[-2], lines[-1]
    assert source.strip() == "x'*A*x +"
    assert caret.index("^") - (len(source) - len(source.lstrip())) == error["column"] - 1


def test_parse_error_on_a_later_line(client):
    error = _error(diff(client, expression="u = W*x + b\nsum(max(0, u) +)", wrt="W"), "ParseError")
    assert error["line"] == 2 and isinstance(error["column"], int)


def test_shape_error_is_located(client):
    error = _error(diff(client, expression="A*x", wrt="x", shapes={"A": ["m", "n"], "x": ["m"]}),
                   "ShapeError")
    assert (error["line"], error["column"]) == (1, 2)


def test_diff_error_for_a_name_not_in_the_expression(client):
    error = _error(diff(client, expression="x'*x", wrt="z"), "DiffError")
    assert "z" in error["message"]


@pytest.mark.parametrize("body, words", [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (json.dumps({"wrt": "x"}).encode(), "'expression'"),
    (json.dumps({"expression": 3, "wrt": "x"}).encode(), "must be a string"),
    (json.dumps({"expression": "x'*x", "wrt": "x", "ordr": 2}).encode(), "did you mean 'order'"),
    (json.dumps({"expression": "x'*x", "wrt": "x", "order": 0}).encode(), "'order'"),
    (json.dumps({"expression": "x'*x", "wrt": "x", "shapes": {"x": "n"}}).encode(), "list of dimensions"),
    (json.dumps({"expression": "x'*x", "wrt": "x", "shapes": {"x": ["n", "n", "n"]}}).encode(), "at most 2"),
    (json.dumps({"expression": "x'*x", "wrt": "x", "structure": {"S": "orthogonal"}}).encode(), "spd"),
    (json.dumps({"expression": "x'*x", "wrt": "x", "backend": "fortran"}).encode(), "fortran"),
    (b"[" * 5000 + b"]" * 5000, "JSON"),
])
def test_malformed_requests_answer_400_with_a_message(client, body, words):
    r = client.post("/api/diff", content=body, headers={"content-type": "application/json"})
    error = _error(r, "MathcalcError")
    assert words in error["message"]


def test_shapes_text_errors_point_at_the_entry(client):
    error = _error(diff(client, expression="x'*x", wrt="x", shapes="x=n; A=m,,n"), "MathcalcError")
    assert error["column"] == 6 and error["message"].split("\n")[-1].index("^") == 2 + 5


def test_parse_shapes_text():
    assert parse_shapes_text("A=n,n; x=n; S=spd(n); a=; b=()\nc=3") == (
        {"A": ("n", "n"), "x": ("n",), "S": ("n", "n"), "a": (), "b": (), "c": (3,)}, {"S": "spd"})
    assert parse_shapes_text("T = symmetric(k)") == ({"T": ("k", "k")}, {"T": "symmetric"})
    assert parse_shapes_text("  ") == ({}, {})
    for bad in ("x", "x=n; x=m", "1x=n", "x=n-1", "S=spd(m,n)", "X=a,b,c", "x=0"):
        with pytest.raises(mc.MathcalcError):
            parse_shapes_text(bad)


def test_job_from_keeps_plain_values():
    job = job_from({"expression": "x'*A*x", "wrt": " x ", "order": "2",
                    "shapes": {"A": ["n", "n"]}, "structure": {"A": "spd"}}, "diff")
    assert job == Job("x'*A*x", "x", 2, {"A": ("n", "n")}, {"A": "spd"}, "numpy")


# ---------------------------------------------------------------------------
# 413, deep and long input


def test_a_1_mb_body_answers_413(client):
    r = client.post("/api/diff", content=b"x" * (1 << 20), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["kind"] == "PayloadTooLarge"


def test_a_1_mb_body_without_a_length_answers_413(client):
    def chunks():  # chunked transfer: the limit is counted while reading
        for _ in range(64):
            yield b" " * (16 << 10)

    r = client.post("/api/diff", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_a_body_just_under_64_kb_is_read(client):
    body = json.dumps({"expression": "x'*x" + " " * (60 << 10), "wrt": "x"}).encode()
    assert len(body) < 64 << 10
    r = client.post("/api/diff", content=body, headers={"content-type": "application/json"})
    assert r.status_code in (200, 400), r.text  # 400 where the parser limits the length


def test_a_10000_deep_expression(client):
    r = diff(client, expression="(" * 10_000 + "x" + ")" * 10_000 + "^2", wrt="x")
    assert r.status_code == 200, r.text[:300]
    assert mc.equivalent(mc.parse(r.json()["result"], x=()), mc.parse("2*x", x=()))
    r = diff(client, expression="-" * 10_000 + "x'*x", wrt="x")
    assert r.status_code == 200, r.text[:300]
    assert mc.equivalent(mc.parse(r.json()["result"], x=("n",)), mc.parse("2*x", x=("n",)))
    r = diff(client, expression="exp(" * 10_000 + "x" + ")" * 10_000, wrt="x")
    assert r.status_code in (200, 400), r.text[:300]
    if r.status_code == 400:
        assert r.json()["error"]["kind"] in ("ParseError", "MathcalcError")


# ---------------------------------------------------------------------------
# 503: the time limit, while other requests go on


def test_a_request_past_the_time_limit_answers_503_and_others_go_on(short):
    server = short
    replaced = server.pool.replaced

    async def scenario():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            start = time.monotonic()
            slow = asyncio.ensure_future(c.post("/api/diff", json=SLOW))
            await asyncio.sleep(0.2)
            quick = []
            while not slow.done() and time.monotonic() - start < 3 * TIMEOUT:
                r = await c.post("/api/diff", json={"expression": "x'*x", "wrt": "x"})
                quick.append((r.status_code, r.json().get("result"), time.monotonic() - start))
            return await slow, time.monotonic() - start, quick

    slow, elapsed, quick = asyncio.run(scenario())
    assert slow.status_code == 503, slow.text[:300]
    assert slow.json()["error"]["kind"] == "TimedOut"
    assert TIMEOUT <= elapsed < TIMEOUT + 2.0
    # Answered while the slow one ran, by the other worker:
    assert quick and all(status == 200 and result == "2*x" for status, result, _ in quick)
    assert any(t < TIMEOUT for *_, t in quick), quick
    # The stuck worker was killed and replaced: the server goes on with both.
    deadline = time.monotonic() + 10
    while server.pool.alive < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.pool.replaced == replaced + 1 and server.pool.alive == 2
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for _ in range(4):
            assert c.post("/api/diff", json={"expression": "x'*x", "wrt": "x"}).status_code == 200


# ---------------------------------------------------------------------------
# 50 at once


def test_50_concurrent_requests_each_get_their_own_answer(server):
    shapes = dict(x=("n",), A=("n", "n"), c=("n",))

    async def scenario():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as c:
            return await asyncio.gather(*(
                c.post("/api/diff", json={"expression": f"x'*A*x + {k}*c'*x", "wrt": "x"})
                for k in range(1, 51)))

    start = time.monotonic()
    answers = asyncio.run(scenario())
    elapsed = time.monotonic() - start
    assert [r.status_code for r in answers] == [200] * 50, [r.text[:200] for r in answers
                                                            if r.status_code != 200][:2]
    assert elapsed < 30, elapsed
    for k, r in enumerate(answers, 1):
        assert mc.equivalent(mc.parse(r.json()["result"], **shapes),
                             mc.parse(f"(A + A')*x + {k}*c", **shapes)), (k, r.json()["result"])
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/api/info").status_code == 200
    assert server.pool.alive == 2


# ---------------------------------------------------------------------------
# the page, headers, escaping, loopback


def test_the_page_and_katex_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for element in ("expression", "wrt", "shapes", "order", "derive", "result", "result-text",
                    "where", "steps", "code", "check", "error"):
        assert f'id="{element}"' in page.text, element
    for path in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        assert client.get(path).status_code == 200, path
    assert "<script>" not in page.text and "onclick" not in page.text  # no inline script
    css = client.get("/static/katex/katex.min.css").text
    fonts = re.findall(r"url\((fonts/[^)]+\.woff2)\)", css)
    assert len(fonts) >= 20
    for font in fonts:
        assert client.get("/static/katex/" + font).status_code == 200, font


def test_every_static_file_is_packaged():
    # pyproject ships static/*, static/*/*, static/*/*/*: nothing may lie deeper.
    files = [p for p in STATIC.rglob("*") if p.is_file()]
    assert files and all(len(p.relative_to(STATIC).parts) <= 3 for p in files)


def test_security_headers_on_every_response(client):
    for r in (client.get("/"), client.get("/static/page.js"), client.get("/api/info"),
              diff(client, expression="x'*x", wrt="x"), diff(client, expression="(", wrt="x"),
              client.get("/nothing-here")):
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"


def test_echoed_text_is_escaped(client):
    r = diff(client, expression="<script>alert(1)</script>", wrt="x")
    assert r.status_code == 400
    assert b"<" not in r.content and b">" not in r.content  # \u003c, \u003e in the JSON
    assert "<script>" in r.json()["error"]["message"]       # and still the user's text, decoded


def test_only_loopback_hosts_and_same_origin_posts(client):
    assert client.get("/", headers={"host": "attacker.example"}).status_code == 421
    assert client.get("/", headers={"host": "localhost:1"}).status_code == 200
    r = client.post("/api/diff", json={"expression": "x'*x", "wrt": "x"},
                    headers={"origin": "http://attacker.example"})
    assert r.status_code == 403
    same = client.post("/api/diff", json={"expression": "x'*x", "wrt": "x"},
                       headers={"origin": client.base_url.scheme + "://" + client.base_url.netloc.decode()})
    assert same.status_code == 200


# ---------------------------------------------------------------------------
# the pool by itself


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_pool_limits_time_memory_and_survives_a_dying_worker(loop):
    async def scenario():
        pool = P.Pool(handler, workers=1, timeout=1.0, queue=2, wait=0.5, memory=200 << 20)
        await pool.start()
        try:
            assert await pool.run("echo", {"a": 1}) == {"a": 1}
            first = await pool.run("pid", None)
            with pytest.raises(P.TimedOut):
                await pool.run("sleep", 30)
            second = await pool.run("pid", None)
            assert second != first  # killed and replaced
            with pytest.raises(P.TooLarge):
                await pool.run("allocate", 400 << 20)
            with pytest.raises(P.WorkerDied):
                await pool.run("die", None)
            with pytest.raises(P.PoolError, match="KeyError"):
                await pool.run("raise", "k")
            assert await pool.run("echo", 2) == 2  # a handler's exception keeps the worker
            # One worker, a line of two that waits at most 0.5 s: the rest are Busy.
            results = await asyncio.gather(pool.run("sleep", 0.8), pool.run("echo", 1),
                                           pool.run("echo", 2), pool.run("echo", 3),
                                           return_exceptions=True)
            assert results[0] == "slept"
            assert all(isinstance(r, P.Busy) for r in results[1:])
            assert pool.replaced == 3 and pool.alive == 1
        finally:
            await pool.close()
        assert pool.alive == 0

    loop.run_until_complete(scenario())


# ---------------------------------------------------------------------------
# the command


def test_mathcalc_serve_prints_its_url_and_stops_on_ctrl_c(mathcalc_script):
    # Its own process group, which Ctrl-C in a terminal signals as a whole (server,
    # fork server and workers alike).
    proc = subprocess.Popen([mathcalc_script, "serve", "--port", "0", "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found, line + proc.stderr.read() if proc.poll() is not None else line
        with httpx.Client(base_url=found.group(0), timeout=30) as c:
            r = c.post("/api/diff", json={"expression": "x'*A*x", "wrt": "x"})
            assert r.status_code == 200 and r.json()["result"] in ("(A + A')*x", "(A' + A)*x")
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_mathcalc_serve_on_a_taken_port_says_so(mathcalc_script, server):
    port = server.url.rsplit(":", 1)[1].strip("/")
    proc = subprocess.run([mathcalc_script, "serve", "--port", port], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_binds_loopback_by_default():
    from mathcalc import cli

    params = {p.name: p.default for p in cli.main.commands["serve"].params}
    assert params["host"] == "127.0.0.1" and params["port"] == 8765 and params["timeout"] == 10.0

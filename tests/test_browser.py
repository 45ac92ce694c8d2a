"""The page of `mathcalc serve` in a real browser: headless Chromium driven by Playwright.

Chromium is the system's (Debian's ``chromium``, which `make test` installs
with apt where it is missing; Playwright's own browser download is never
used). Where it is absent and cannot be installed these tests skip and say
so; with MATHCALC_REQUIRE_CHROMIUM=1 (set by .ci/run where apt can install
it) its absence is a failure instead.

One server and one browser for the module. Every page records the requests
it makes and its console: a test fails on a request to any other host than
the server and on any console error or uncaught exception. A screenshot of
the page is saved under tests/artifacts/ (git-ignored); with
MATHCALC_UPDATE_SCREENSHOT=1 it also replaces docs/page.png, the README's.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest

pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

import mathcalc as mc  # noqa: E402
from serve_helpers import running_server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]
WAIT_MS = 15_000


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    if path is None:
        message = ("Chromium is not installed: the browser tests are skipped (`make test` "
                   "installs Debian's chromium with apt where it runs as root)")
        if os.environ.get("MATHCALC_REQUIRE_CHROMIUM"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server():
    with running_server(timeout=10, workers=2) as running:
        yield running


class Recorder:
    """Requests and console errors of one page.

    Chromium itself logs "Failed to load resource: ... status of 400" for any
    response >= 400, also one the page expects and shows (SPEC 10's 400 for
    bad input): a test that sends bad input on purpose allows exactly that
    line for that path (``allow(400, "/api/diff")``); everything else fails.
    """

    def __init__(self, page, base: str):
        self.base = urlsplit(base)
        self.requests, self.errors, self.allowed = [], [], set()
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def allow(self, status: int, path: str) -> None:
        self.allowed.add((status, path))

    def _console(self, message) -> None:
        if message.type not in ("error", "assert"):
            return
        where = urlsplit((message.location or {}).get("url", "")).path
        for status, path in self.allowed:
            if where == path and message.text.startswith(
                    f"Failed to load resource: the server responded with a status of {status} "):
                return
        self.errors.append(f"console.{message.type}: {message.text} ({where})")

    def foreign(self) -> list[str]:
        return [u for u in self.requests
                if urlsplit(u).netloc != self.base.netloc or urlsplit(u).scheme != self.base.scheme]


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    recorder = Recorder(page, server.url)
    page.recorder = recorder
    yield page
    try:
        assert recorder.foreign() == [], f"requests to other hosts: {recorder.foreign()}"
        assert recorder.errors == [], recorder.errors
    finally:
        context.close()


def test_the_recorder_sees_what_it_must_fail_on(browser, server):
    # The checks every test makes are themselves checked: a request to another
    # host (a loopback address that is not the server's) and console errors are seen.
    context = browser.new_context()
    page = context.new_page()
    recorder = Recorder(page, server.url)
    try:
        page.goto(server.url)
        page.evaluate("() => { console.error('planted'); const i = new Image();"
                      " i.src = 'http://127.0.0.2:9/x.png'; document.body.appendChild(i); }")
        page.wait_for_timeout(300)
        assert any("planted" in e for e in recorder.errors)
        assert any("Content Security Policy" in e for e in recorder.errors), recorder.errors
        page.set_content('<img src="http://127.0.0.2:9/y.png">')  # no CSP here: the request goes out
        assert any(u.startswith("http://127.0.0.2:9/") for u in recorder.foreign()), recorder.requests
    finally:
        context.close()


def _query(page) -> dict:
    """The page's own query string (history.replaceState keeps it up to date), decoded."""
    return {k: v[0] for k, v in parse_qs(page.evaluate("location.search")[1:]).items()}


def _derived(page):
    page.wait_for_selector("#result .katex", state="visible")
    return page.text_content("#result-text")


def test_type_derive_and_see_katex(page, server):
    page.goto(server.url)
    page.fill("#expression", "x'*A*x + c'*x")
    page.fill("#wrt", "x")
    page.click("#derive")
    text = _derived(page)
    shapes = dict(x=("n",), A=("n", "n"), c=("n",))
    assert mc.equivalent(mc.parse(text, **shapes), mc.parse("(A + A')*x + c", **shapes))
    assert page.is_hidden("#error")
    assert page.locator("#result .katex-html").count() == 1      # typeset, not raw LaTeX
    assert "def df_dx" in page.text_content("#code")
    assert "x: (n,)" in page.text_content("#inferred")
    # the URL follows the form: this is a link to the same derivation
    assert _query(page) == {"expression": "x'*A*x + c'*x", "wrt": "x"}


def test_enter_in_the_expression_derives(page, server):
    page.goto(server.url)
    page.fill("#wrt", "W")
    page.fill("#expression", "sum(max(0, W*x + b))")
    page.press("#expression", "Enter")
    text = _derived(page)
    shapes = dict(W=("m", "n"), x=("n",), b=("m",))
    assert mc.equivalent(mc.parse(text, **shapes), mc.parse("step(W*x + b)*x'", **shapes))
    assert page.input_value("#expression") == "sum(max(0, W*x + b))"  # no newline typed


def test_a_shared_link_fills_the_form_and_derives(page, server):
    expression = "norm2(A*x - y)^2"
    page.goto(f"{server.url}?expression={quote(expression)}&wrt=x&shapes={quote('A=m,n')}")
    text = _derived(page)
    assert page.input_value("#expression") == expression
    assert page.input_value("#wrt") == "x" and page.input_value("#shapes") == "A=m,n"
    shapes = dict(A=("m", "n"), x=("n",), y=("m",))
    assert mc.equivalent(mc.parse(text, **shapes), mc.parse("2*A'*(A*x - y)", **shapes))
    assert page.text_content("#result-shape").strip() == "shape (n,)"
    page.fill("#wrt", "y")  # editing keeps the link up to date
    assert _query(page) == {"expression": expression, "wrt": "y", "shapes": "A=m,n"}


def test_an_error_is_text_with_the_caret_under_the_column(page, server):
    page.recorder.allow(400, "/api/diff")
    page.goto(server.url)
    page.fill("#expression", "x'*A*x + <b>bold</b>")
    page.fill("#wrt", "x")
    page.click("#derive")
    page.wait_for_selector("#error", state="visible")
    assert page.is_hidden("#outputs")
    box = page.locator("#error")
    assert box.evaluate("el => el.children.length") == 0  # text only: nothing parsed as HTML
    assert page.locator("b").count() == 0
    text = box.text_content()
    assert text.startswith("ParseError: ")
    lines = text.split("\n")
    source, caret = lines[-2], lines[-1]
    column = int(text.split("column ")[1].split(")")[0])
    indent = len(source) - len(source.lstrip())
    assert source.strip() == "x'*A*x + <b>bold</b>"
    assert caret.index("^") == indent + column - 1
    assert source[caret.index("^")] == "<"
    assert box.evaluate("el => getComputedStyle(el).fontFamily").lower().find("mono") >= 0
    assert box.evaluate("el => getComputedStyle(el).whiteSpace") == "pre"


def test_examples_derive_and_the_check_runs(page, server):
    page.goto(server.url)
    names = page.locator("button.example").all_text_contents()
    assert names == ["neuron", "least squares", "logistic regression", "Gaussian log-likelihood",
                     "2-layer MLP"]
    for k, name in enumerate(names):
        page.evaluate("() => { document.getElementById('result').textContent = ''; }")
        page.locator("button.example").nth(k).click()
        page.wait_for_selector("#result .katex", state="visible")
        assert page.is_hidden("#error"), (name, page.text_content("#error"))
        expression, wrt = page.input_value("#expression"), page.input_value("#wrt")
        assert _query(page)["wrt"] == wrt and _query(page)["expression"] == expression
        # what the page shows is the library's derivative (shapes as the page inferred them)
        shown = page.text_content("#result-text")
        assert shown == str(mc.diff(_parse_as_page(expression, page.input_value("#shapes")), wrt))
    page.click("#run-check")
    page.wait_for_function("() => /^(ok|FAILED)/.test(document.getElementById('check').textContent)")
    assert page.text_content("#check").startswith("ok: "), page.text_content("#check")


def _parse_as_page(expression: str, shapes_text: str):
    from mathcalc.serve.request import Job, parse_shapes_text
    from mathcalc.serve.work import parse

    shapes, structure = parse_shapes_text(shapes_text)
    return parse(Job(expression, "", 1, shapes, structure))


def test_code_follows_the_backend_choice(page, server):
    page.goto(f"{server.url}?expression={quote(chr(120) + chr(39) + '*x')}&wrt=x")
    _derived(page)
    backends = page.locator("#backend option").all_text_contents()
    assert backends[0] == "numpy"
    assert page.locator("label[for=backend]").count() == 1
    for name in backends[1:2]:  # one other backend (each first use imports its library: seconds)
        page.select_option("#backend", name)
        page.wait_for_function(
            "name => { const c = document.getElementById('code').textContent;"
            " return c.includes('import ' + name) || c.includes(name + \"'\"); }", arg=name)
        assert _query(page)["backend"] == name


def test_where_and_steps_when_mathcalc_has_them(page, server):
    page.goto(f"{server.url}?expression={quote('sum(max(0, W*x + b))')}&wrt=W")
    _derived(page)
    for feature, element in (("where", "where"), ("explain", "steps")):
        text, note = page.text_content(f"#{element}-text"), page.text_content(f"#{element}-note")
        if hasattr(mc, feature):
            assert page.locator(f"#{element} .katex").count() >= 1, element
            assert text.strip() and not note, (element, note)
        else:
            assert not text and f"mc.{feature}" in note  # the note says what is missing
            assert page.is_visible(f"#{element}-note")


def test_labels_and_keyboard(page, server):
    page.goto(server.url)
    for element in ("expression", "wrt", "shapes", "order", "backend"):
        assert page.locator(f"label[for={element}]").count() == 1, element
    page.focus("#expression")
    page.keyboard.type("x'*x")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "wrt"
    page.keyboard.type("x")
    page.keyboard.press("Enter")  # Enter in an input submits the form
    assert mc.equivalent(mc.parse(_derived(page), x=("n",)), mc.parse("2*x", x=("n",)))


def test_shapes_are_inferred_as_one_types(page, server):
    page.goto(server.url)
    page.fill("#shapes", "A=m,n")
    page.locator("#expression").press_sequentially("x'*A'*y")
    page.wait_for_function("() => document.getElementById('inferred').textContent.includes('y: (m,)')")
    assert page.text_content("#inferred") == "x: (n,) · A: (m, n) · y: (m,) · expression: ()"
    assert page.is_hidden("#outputs")  # inferring does not derive


def test_copy_buttons_copy_the_shown_results(browser, server):
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url.rstrip("/"))
    page = context.new_page()
    recorder = Recorder(page, server.url)
    try:
        page.goto(f"{server.url}?expression={quote('logdet(X)')}&wrt=X")
        _derived(page)
        for key, element in (("latex", None), ("result", "#result-text"), ("code", "#code")):
            want = page.text_content(element) if element else mc.latex(mc.diff("logdet(X)", "X"))
            assert want
            page.click(f"button.copy[data-copy={key}]")
            page.wait_for_function("async want => (await navigator.clipboard.readText()) === want",
                                   arg=want)
            assert page.text_content(f"button.copy[data-copy={key}]") == "Copied"
        assert recorder.errors == [] and recorder.foreign() == []
    finally:
        context.close()


def test_screenshot(page, server):
    page.goto(f"{server.url}?expression={quote('(max(0, w·x + b) - y)^2')}&wrt=w"
              f"&shapes={quote('w=n; x=n; b=; y=')}")
    _derived(page)
    page.wait_for_function("() => document.fonts.status === 'loaded'")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot, top = ARTIFACTS / "page.png", ARTIFACTS / "page-top.png"
    page.screenshot(path=str(shot), full_page=True)
    page.screenshot(path=str(top))  # the first screen (1100 x 900): the README's picture
    assert shot.stat().st_size > 10_000 and top.stat().st_size > 10_000
    assert page.evaluate("() => document.fonts.check('16px KaTeX_Main')")  # KaTeX's own fonts loaded
    if os.environ.get("MATHCALC_UPDATE_SCREENSHOT"):
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(top, ROOT / "docs" / "page.png")

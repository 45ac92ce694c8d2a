"""Render LaTeX strings with KaTeX (node) to check that they are valid.

    errors = render_all([r"\frac{a}{b}", r"\frac{"])
    # -> [KatexError(index=1, latex='\\frac{', message='KaTeX parse error: ...')]

All strings go through one node subprocess, each rendered with
``katex.renderToString(s, {throwOnError: true, displayMode: true})``.
KaTeX is looked for in $MATHCALC_KATEX_DIR, then .katex/node_modules/katex
(where `make test` installs it), then node_modules/katex, then wherever node's
own resolution finds it. Printing tests use the ``render_all`` fixture of
conftest.py: it skips when node is absent and fails when KaTeX is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
INSTALL_HINT = ("KaTeX is not installed: run `make test` (it installs KaTeX into .katex/) or "
                "`npm install --prefix .katex katex`")

_SCRIPT = r"""
const katex = require(process.argv[1]);
const strict = process.argv[2] === "strict";
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const out = JSON.parse(input).map((s) => {
    const warnings = [];
    const options = {
      throwOnError: true,
      displayMode: true,
      strict: (code, msg) => { warnings.push(code + ": " + msg); return "ignore"; },
    };
    try {
      if (typeof s !== "string") throw new Error("not a string: " + JSON.stringify(s));
      katex.renderToString(s, options);
      if (strict && warnings.length) return "LaTeX-incompatible input: " + warnings.join("; ");
      return null;
    } catch (e) {
      return String(e && e.message ? e.message : e);
    }
  });
  process.stdout.write(JSON.stringify(out));
});
"""


class KatexError(NamedTuple):
    index: int
    latex: str
    message: str

    def __str__(self) -> str:
        return f"[{self.index}] {self.latex!r}: {self.message}"


class KatexUnavailable(RuntimeError):
    """node is present but KaTeX cannot be found."""


def node_path() -> str | None:
    return shutil.which("node")


def katex_module() -> str | None:
    """The path to give to node's require(), or None when KaTeX is not installed."""
    candidates = []
    if os.environ.get("MATHCALC_KATEX_DIR"):
        candidates.append(Path(os.environ["MATHCALC_KATEX_DIR"]))
    candidates += [ROOT / ".katex" / "node_modules" / "katex", ROOT / "node_modules" / "katex"]
    for c in candidates:
        if (c / "package.json").is_file():
            return str(c)
    node = node_path()
    if node:
        probe = subprocess.run([node, "-e", "process.stdout.write(require.resolve('katex'))"],
                               capture_output=True, text=True, cwd=ROOT, timeout=60)
        if probe.returncode == 0 and probe.stdout:
            return "katex"
    return None


def render_all(strings, strict: bool = False, timeout: float = 120) -> list[KatexError]:
    """Render every string with KaTeX; the list of those that failed (empty when all rendered).

    ``strict=True`` also reports KaTeX's strict-mode warnings (LaTeX-incompatible
    input, e.g. a raw unicode letter in math mode) as errors.
    Raises KatexUnavailable when node or KaTeX is missing.
    """
    strings = list(strings)
    node = node_path()
    if node is None:
        raise KatexUnavailable("node is not installed")
    module = katex_module()
    if module is None:
        raise KatexUnavailable(INSTALL_HINT)
    if not strings:
        return []
    proc = subprocess.run([node, "-e", _SCRIPT, module, "strict" if strict else "lenient"],
                          input=json.dumps(strings), capture_output=True, text=True,
                          encoding="utf-8", cwd=ROOT, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"the KaTeX node process failed (status {proc.returncode}):\n{proc.stderr}")
    results = json.loads(proc.stdout)
    return [KatexError(i, s, msg) for i, (s, msg) in enumerate(zip(strings, results)) if msg is not None]

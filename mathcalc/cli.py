"""The command line (SPEC section 5): ``mathcalc diff | check | shapes | serve``.

Exit status: 0 success, 1 a check that failed (``diff --check``, ``check``),
2 bad input (any ``MathcalcError``, shown as its one-line message with the
caret, never a traceback; click's usage errors, an unknown option among
them, also exit 2), 3 an internal error (a bug in mathcalc: set
``MATHCALC_DEBUG=1`` to see its traceback), 141 standard output closed early
(``mathcalc diff ... | head -1``): nothing more is written and no message is
shown, the Python documentation's idiom (stdout pointed at devnull). The
status is 128 + SIGPIPE, what the shell shows for a tool that SIGPIPE
ended, rather than the 1 that click's own handler and the Python
documentation use: 1 here means a failed check.

A bare ``mathcalc EXPR [--shape ...]`` is ``mathcalc shapes EXPR [--shape ...]``.
EXPR may start with a minus sign (``mathcalc diff "-x'*x" --wrt x``): there
are no short options, so a token ``-...`` is an expression; a token
``--...`` is an option and an unknown one is a usage error. An expression
that starts with ``--`` goes after ``--``.
"""

from __future__ import annotations

import os
import sys
import traceback

import click
import numpy as np

import mathcalc as mc
from .checking import compare, pair
from .declared import parse_shape_spec
from .expression import as_expr, structured
from .parse import readings
from .shapes import format_shape

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_BROKEN_PIPE = 128 + 13  # 128 + SIGPIPE, as the shell reports `yes | head -1`

# No short options anywhere: an expression such as "-x'*A*x" reaches the EXPR
# argument (see _Command) instead of being read as a cluster of short flags.
CONTEXT = {"help_option_names": ["--help"], "max_content_width": 100}


# --------------------------------------------------------------------------
# shapes on the command line


def _shapes(specs) -> dict:
    out = {}
    for spec in specs:
        name, shape = parse_shape_spec(spec)
        if name in out and out[name] != shape:
            raise click.BadParameter(f"{name!r} is given two shapes: {format_shape(out[name])} "
                                     f"and {format_shape(shape)}")
        out[name] = shape
    return out


def _text(expr: str, what: str = "EXPR") -> str:
    """The expression text; ``-`` reads it from standard input."""
    if expr == "-":
        text = sys.stdin.read()
        if text.endswith("\n"):
            text = text.rstrip("\n")
        return text
    return expr


# --------------------------------------------------------------------------
# error handling: one place


class Failed(Exception):
    """A check that did not pass: exit status 1 (the report is already printed)."""


def _run(fn):
    """Run a command body, turning errors into messages and exit statuses.

    Standard output is flushed here, so that a reader that has gone away
    (``| head -1``) is seen now and not as an error at interpreter exit.
    """
    status = _status(fn)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        status = _broken_pipe()
    if status:
        sys.exit(status)


def _status(fn) -> int:
    try:
        fn()
    except BrokenPipeError:
        return _broken_pipe()
    except Failed:
        return EXIT_FAILED
    except mc.MathcalcError as err:
        click.echo(f"error: {err}", err=True)
        return EXIT_BAD_INPUT
    except click.ClickException:
        raise
    except RecursionError:
        click.echo("error: the expression is nested too deeply", err=True)
        return EXIT_BAD_INPUT
    except Exception as err:  # a bug in mathcalc, not bad input
        if os.environ.get("MATHCALC_DEBUG"):
            traceback.print_exc()
        else:
            click.echo(f"internal error (a bug in mathcalc, please report it): "
                       f"{type(err).__name__}: {err}\n"
                       "rerun with MATHCALC_DEBUG=1 to see the traceback", err=True)
        return EXIT_INTERNAL
    return 0


def _broken_pipe() -> int:
    """Standard output's reader is gone: send the rest to devnull, quietly (the
    idiom of Python's signal documentation), and exit 128 + SIGPIPE."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


# --------------------------------------------------------------------------
# the group: a bare expression means `shapes`


class _Command(click.Command):
    """A command whose EXPR may start with '-', while unknown options are errors.

    There are no short options, so a token such as ``-x'*x`` (not an
    option's value) is the expression: it is moved after a ``--``, where click
    reads it as the argument. Every ``--name`` token stays an option, and an
    unknown one is click's usage error ("No such option", exit 2).
    """

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, _expressions_after_dashes(self, ctx, list(args)))


def _expressions_after_dashes(command: click.Command, ctx, args: list) -> list:
    takes_value = set()
    for param in command.get_params(ctx):
        if isinstance(param, click.Option) and not param.is_flag and not param.count:
            takes_value.update(param.opts)
    kept, expressions = [], []
    k = 0
    while k < len(args):
        token = args[k]
        if token == "--":
            return kept + ["--"] + expressions + args[k + 1:]
        if token in takes_value:  # --wrt X, --claimed "-2*A*x": the next token is its value
            kept += args[k:k + 2]
            k += 2
            continue
        if token.startswith("-") and not token.startswith("--") and token != "-":
            expressions.append(token)
        else:
            kept.append(token)
        k += 1
    return kept + (["--"] + expressions if expressions else [])


class _Main(click.Group):
    """A group whose first argument, when it is not a command, is an expression for ``shapes``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "--version"):
            args = ["shapes", *args]
        return super().parse_args(ctx, args)


shape_option = click.option(
    "--shape", "declared", multiple=True, metavar="NAME=DIMS",
    callback=lambda ctx, param, value: _shapes(value),
    help="Declare a shape: x=n (vector), A=m,n (matrix), a= (scalar); "
         "ints allowed (x=3). Repeat for several variables.")


def structure_options(command):
    """``--symmetric S`` and ``--spd S`` (SPEC 6), repeatable, for a command that parses EXPR."""
    command = click.option("--spd", "spd", multiple=True, metavar="NAME",
                           help="Declare a square matrix symmetric positive definite "
                                "(a covariance); repeatable.")(command)
    return click.option("--symmetric", "symmetric", multiple=True, metavar="NAME",
                        help="Declare a square matrix symmetric (S' = S): its derivative is "
                             "(G + G')/2; repeatable.")(command)


def _parsed(expr: str, declared: dict, symmetric=(), spd=()):
    """EXPR parsed with the declared shapes, then the structures of --symmetric / --spd
    (a structured name's shape is declared or inferred: it must be a square matrix)."""
    f = mc.parse(_text(expr), **declared)
    kinds = {**dict.fromkeys(symmetric, "symmetric"), **dict.fromkeys(spd, "spd")}
    both = sorted(set(symmetric) & set(spd))
    if both:
        raise click.BadParameter(f"{both[0]!r} is given as both --symmetric and --spd")
    shapes = {}
    for name, kind in kinds.items():
        shape = f.variables.get(name)
        if shape is None:
            raise click.BadParameter(f"--{kind} {name}: {name!r} is not a variable of EXPR "
                                     "(declare it with --shape to keep it)")
        if len(shape) != 2 or shape[0] != shape[1]:
            raise mc.ShapeError(f"--{kind} {name}: {name} has shape {format_shape(shape)}; only "
                                f"a square matrix can be {kind}")
        shapes[name] = structured(kind, shape[0])
    return as_expr(f, shapes) if shapes else f


@click.group(cls=_Main, context_settings=CONTEXT)
@click.version_option(mc.__version__, "--version", prog_name="mathcalc")
def main():
    """Symbolic matrix calculus: derivatives of matrix expressions as formulas.

    \b
      mathcalc diff "x'*A*x" --wrt x                # (A + A')*x
      mathcalc diff "sum(max(0, W*x + b))" --wrt W --latex
      mathcalc check "x'*A*x" --wrt x --claimed "(A + A')*x"
      mathcalc shapes "x'*A*x"                      # x: (n,)  A: (n, n)
      mathcalc "x'*A*x"                             # the same as shapes
      echo "x'*x" | mathcalc diff - --wrt x         # EXPR '-' reads stdin
      mathcalc serve                                # the page, on http://127.0.0.1:8765/

    EXPR may start with a minus sign (mathcalc diff "-x'*x" --wrt x); an
    unknown option is an error.

    Exit status: 0 ok, 1 a check failed, 2 bad input (the error with a caret
    under the offending character) or a usage error, 3 an internal error,
    141 standard output closed early (| head).
    """


@main.command(cls=_Command, context_settings=CONTEXT)
@click.argument("expr")
@click.option("--wrt", required=True, metavar="X", help="The variable to differentiate with respect to.")
@shape_option
@click.option("--order", default=1, show_default=True, type=click.IntRange(min=1),
              help="Order of the derivative (2: the Hessian of a scalar).")
@click.option("--latex", "as_latex", is_flag=True, help="Print the derivative as LaTeX.")
@click.option("--numpy", "as_numpy", is_flag=True,
              help="Print a standalone numpy function that evaluates the derivative.")
@click.option("--code", "code_backend", default=None,
              type=click.Choice(["numpy", "jax", "torch", "cupy", "dask"]),
              help="Print a standalone function for this backend library (--numpy is --code numpy).")
@click.option("--name", default=None, metavar="NAME",
              help="Name of the function printed by --numpy (default: df_dX).")
@click.option("--check", "run_check", is_flag=True,
              help="Check the derivative against finite differences; exit 1 if it fails.")
@click.option("--steps", "steps", is_flag=True,
              help="Print the derivation step by step: intermediate variables, local "
                   "derivatives, the chain rule, the result (first derivatives).")
@click.option("--where", "with_where", is_flag=True,
              help="Name the repeated and long subexpressions of the derivative t1, t2, ... "
                   "(printed one definition a line, as text that parses back; with --latex "
                   "one aligned display).")
@structure_options
def diff(expr, wrt, declared, order, as_latex, as_numpy, name, run_check, symmetric, spd,
         code_backend=None, steps=False, with_where=False):
    """Differentiate EXPR with respect to X.

    Prints the derivative in matrix notation and its shape, which is
    EXPR's shape followed by X's (the layout of jax.jacobian). With --latex
    and/or --numpy it prints those instead; --check adds a finite-difference
    check of the result.

    \b
    Examples:
      mathcalc diff "x'*A*x" --wrt x
      mathcalc diff "x'*A*x" --wrt x --shape x=n --shape A=n,n --order 2
      mathcalc diff "sum(max(0, W*x + b))" --wrt W --latex
      mathcalc diff "sum(tanh(W2*tanh(W1*x + b1) + b2))" --wrt W1 --where
      mathcalc diff "logdet(X)" --wrt X --numpy --name grad_logdet
      mathcalc diff "norm2(A*x - y)^2" --wrt x --check
      mathcalc diff "-logdet(S)/2 - (x - u)'*inv(S)*(x - u)/2" --wrt S --spd S
    """

    def body():
        f = _parsed(expr, declared, symmetric, spd)
        if steps and order != 1:
            raise mc.MathcalcError("--steps explains a first derivative; drop --order")
        g = mc.diff(f, wrt, order=order)
        if steps:
            click.echo(str(mc.explain(f, wrt)))
        elif not (as_latex or as_numpy or code_backend):
            click.echo(mc.where(g).text(multiline=True) if with_where else str(g))
            click.echo(f"shape: {format_shape(g.shape)}")
        if as_latex:
            click.echo(mc.latex(mc.where(g) if with_where else g))
        backend = code_backend or ("numpy" if as_numpy else None)
        if backend:
            fname = name or (f"df_d{wrt}" if order == 1 else f"d{order}f_d{wrt}{order}")
            click.echo(mc.codegen(g, name=fname, backend=backend).rstrip("\n"))
        if run_check:
            result = mc.check(f, wrt, order=order)
            _report_check(result)

    _run(body)


def _report_check(result) -> None:
    err = result.max_rel_error
    if result.ok:
        click.echo(f"check: ok (max relative error {err:.2e} against finite differences)")
        return
    click.echo(f"check: FAILED (max relative error {err:.2e} against finite differences)")
    if result.message:
        click.echo(f"  {result.message}")
    raise Failed


@main.command(cls=_Command, context_settings=CONTEXT)
@click.argument("expr")
@click.option("--wrt", required=True, metavar="X", help="The variable to differentiate with respect to.")
@click.option("--claimed", required=True, metavar="EXPR",
              help="Your derivative of EXPR with respect to X ('-' reads it from stdin).")
@shape_option
@structure_options
def check(expr, wrt, claimed, declared, symmetric, spd):
    """Verify a hand derivation: is CLAIMED the derivative of EXPR with respect to X?

    Prints "correct" and exits 0 when it is; otherwise prints both sides and
    the largest difference at a random point, and exits 1 ("undecided" with
    the reason, also exit 1, where no point has usable values). The derivative's
    layout is EXPR's shape followed by X's (a scalar's gradient has X's shape).

    \b
    Examples:
      mathcalc check "x'*A*x" --wrt x --claimed "(A + A')*x"
      mathcalc check "log(det(X))" --wrt X --claimed "inv(X)'"
      mathcalc check "sum(max(0, W*x + b))" --wrt b --shape b=m --claimed "step(W*x + b)"
    """

    def body():
        if expr == "-" and claimed == "-":
            raise click.BadParameter("only one of EXPR and --claimed can be read from stdin")
        f = _parsed(expr, declared, symmetric, spd)
        g = mc.diff(f, wrt)
        claimed_text = _text(claimed)
        # The claimed side is parsed with the expression's shapes (and with its
        # own, when those contradict them: then the shapes differ, exit 1).
        try:
            g, c = pair(g, claimed_text, declared)
        except mc.MathcalcError as err:  # only the claimed text is parsed here
            raise mc.MathcalcError(f"in --claimed: {err}") from err
        result = compare(g, c)
        if result.equal:
            click.echo("correct")
            return
        if not result.usable:  # no point could decide: no verdict either way (SPEC 2, issue 10)
            click.echo("undecided: the claimed derivative was not verified")
            click.echo(f"  {result.reason}")
            raise Failed
        click.echo("incorrect")
        click.echo(f"  derivative: {g}")
        click.echo(f"  claimed:    {' '.join(claimed_text.split())}")
        click.echo(f"  shapes:     {format_shape(g.shape)} and {format_shape(c.shape)}")
        if tuple(g.shape) != tuple(c.shape):
            click.echo(f"  the shapes differ: the derivative of a {format_shape(f.shape)} "
                       f"expression with respect to {wrt} {format_shape(f.variables[wrt])} "
                       f"has shape {format_shape(g.shape)} (its shape followed by {wrt}'s)")
        elif result.point is None:
            click.echo(f"  {result.reason}")
        else:
            entry = f" at entry [{', '.join(map(str, result.index))}]" if result.index else ""
            click.echo(f"  largest difference {result.max_diff:.6g}{entry}: "
                       f"derivative {result.left:.10g}, claimed {result.right:.10g}")
            click.echo("  at the point")
            for name, value in result.point.items():
                click.echo(_array(f"    {name} = ", value))
        raise Failed

    _run(body)


def _array(prefix: str, value) -> str:
    """``prefix`` and the array, its later rows aligned under the first."""
    return prefix + np.array2string(np.asarray(value), precision=4, suppress_small=True,
                                    max_line_width=100, prefix=prefix)


@main.command(cls=_Command, context_settings=CONTEXT)
@click.argument("expr")
@shape_option
@structure_options
def shapes(expr, declared, symmetric, spd):
    """Show the shape of every variable of EXPR, inferred or declared, and of EXPR itself.

    One line per variable (x: (n,)) with, indented below it, why it has that
    shape (declared, forced by usage, or the naming convention), then the
    expression's shape. A bare
    `mathcalc EXPR` does the same (name the command explicitly when EXPR is
    itself one of the command names).

    \b
    Examples:
      mathcalc shapes "x'*A*x"                      # x: (n,), A: (n, n), (expression): ()
      mathcalc shapes "W*x + b" --shape W=3,4
      mathcalc "sum(max(0, W*x + b))"
    """

    def body():
        f = _parsed(expr, declared, symmetric, spd)
        # why each variable has its shape (SPEC 2: a reading never guesses silently)
        why = readings(f.source, {name: f.variables[name] for name in declared}) \
            if f.source is not None else {}
        for name, shape in f.variables.items():
            kind = f.structure.get(name)
            click.echo(f"{name}: {format_shape(shape)}" + (f" {kind}" if kind else ""))
            if name in why:
                click.echo(f"  {why[name]}")
        click.echo(f"(expression): {format_shape(f.shape)}")

    _run(body)


@main.command(context_settings=CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (another than loopback exposes the page to the network).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: a free one, printed).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the web browser.")
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Time limit of one derivation, in seconds (past it: 503, the worker is replaced).")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="Derivations run at once, each in its own process (default: up to 4).")
def serve(host, port, open_browser, timeout, workers):
    """Serve the page: type an expression, see its derivative typeset (SPEC section 10).

    Everything the page loads, KaTeX included, comes from the installed
    package: it works offline. Prints the URL and serves until Ctrl-C.

    \b
    Examples:
      mathcalc serve                                # http://127.0.0.1:8765/
      mathcalc serve --port 0 --open                # a free port, in the browser
    """
    try:
        from .serve.server import ServeError, run
    except ImportError as err:
        click.echo(f"error: the page needs the web extra: pip install 'mathcalc[web]' ({err})",
                   err=True)
        sys.exit(EXIT_BAD_INPUT)
    try:
        status = run(host=host, port=port, open_browser=open_browser, timeout=timeout,
                     workers=workers)
    except ServeError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    main()

"""Imported by the worker pool's fork server (``Pool(preload=...)``): a small derivation run
there, once, so that every worker forked from it starts with the parser built and the
printers, code generator and checker loaded (a first request would wait ~0.5 s for them)."""

from .work import warm_up

warm_up()

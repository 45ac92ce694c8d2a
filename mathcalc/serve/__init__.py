"""The page (SPEC section 10): ``mathcalc serve``, an ASGI app with its static files and KaTeX."""

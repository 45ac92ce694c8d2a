"""Every LaTeX string the identity corpus produces renders in KaTeX (strict mode)."""

import mathcalc as mc
from identities import IDENTITIES


def _corpus():
    strings = []
    for ident in IDENTITIES:
        f = mc.parse(ident["f"], **ident["shapes"])
        g = mc.diff(f, ident["wrt"], order=ident.get("order", 1))
        strings += [mc.latex(f), mc.latex(g), mc.latex(g, bold=True)]
        if ident.get("order", 1) == 1:
            strings.append(mc.latex_derivation(f, ident["wrt"]))
    return strings


def test_every_identity_renders_in_katex(render_all):
    strings = _corpus()
    assert len(strings) > 400
    errors = render_all(strings, strict=True)
    assert not errors, "\n".join(f"{e.latex!r}: {e.message}" for e in errors[:10])

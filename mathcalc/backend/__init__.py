"""The back end: lowering to a straight-line program, one emitter per backend library (SPEC section 9)."""

"""``python -m mathcalc``: the same as the ``mathcalc`` console script."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="mathcalc")

"""`python -m ganforge.cli.report`: the same as `ganforge report`."""

from ganforge.cli.report import main

__all__: list[str] = []

main()

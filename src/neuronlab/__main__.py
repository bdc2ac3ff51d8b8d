"""``python -m neuronlab``: the same as the ``neuronlab`` command."""

from neuronlab.cli import main

__all__: list[str] = []  # a script, not a module to import from

main()

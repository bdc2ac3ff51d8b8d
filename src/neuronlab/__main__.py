"""``python -m neuronlab``: the same as the ``neuronlab`` command."""

from neuronlab.cli import main

main()

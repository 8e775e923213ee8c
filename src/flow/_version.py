"""flow's version, in a module of its own so that `flow --version` imports nothing else."""

__version__ = "0.1.0"

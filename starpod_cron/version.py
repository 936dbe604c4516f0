"""The package's version, defined once: ``pyproject.toml`` reads it (``[tool.setuptools.dynamic]``),
node heartbeats and ``--version`` show it. Asking the installed metadata instead
(``importlib.metadata``) costs every process that starts a scheduler about 20 ms of CPU to import
it and search the import path."""

__version__ = "0.1.0"

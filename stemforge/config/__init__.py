"""The one config schema and its loader, below every package that runs: a run's config (``run``, with its ``mix``
section), the YAML reader that refuses repeated keys (``yamlfile``) and the generic loader that says every
problem in one line (``loader``). Imports no Beam, no torch and installs no log filter."""

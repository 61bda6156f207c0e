"""The one config schema and its loader, below every other package: a run's config (``run``, with its ``mix``
section), the YAML reader that refuses repeated keys (``yamlfile``), the generic loader that says every
problem in one line (``loader``), and the shard settings a reader takes back from a shard's metadata
(``shard_settings``). Imports no Beam, no torch and installs no log filter."""

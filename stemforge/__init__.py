"""stemforge: audio corpora to separated stems and spectrogram shards with Apache Beam.

The subpackages live in the repository's top-level folders and are installed under this name (setup.py's
``package_dir``), so nothing of stemforge's lands at the top of site-packages:

- ``stemforge.transforms``: audio I/O, augmentation, STFT; pure signal processing, no Beam.
- ``stemforge.model``: the networks, checkpoints, detection and exact inference; no Beam.
- ``stemforge.shards``: the Parquet shard format and the run manifests that say what is committed.
- ``stemforge.training``: the shard reader, trainer and evaluation; no Beam.
- ``stemforge.pipeline``: the Beam graph, its sinks and the command line (``python -m stemforge``).

Importing this package imports none of them.
"""

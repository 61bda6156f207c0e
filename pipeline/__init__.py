"""stemforge's Beam side: CLI, config, graph and sinks.

Importing it filters known third-party start-up noise from the root logger (see ``pipeline.logs``)
before any module here imports Beam.
"""

from pipeline.logs import silence_startup_noise

silence_startup_noise()

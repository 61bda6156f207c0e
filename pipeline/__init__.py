"""stemforge's Beam side: CLI, config, graph and sinks.

Importing the package runs nothing: ``pipeline.config`` (the run schema and its loader) imports no Beam and
installs no log filter, so `stemforge train` and the ``training`` package read configs without the rest of
the pipeline. The command line filters Beam's start-up noise itself (``pipeline.logs.configure_cli_logging``)
before any command imports Beam.
"""

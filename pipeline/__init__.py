"""stemforge's Beam side: the command line, the launcher, the graph, its DoFns and sinks.

Importing the package runs nothing. The config schema it runs from is below it (``stemforge.config``), so
`stemforge train` and the ``training`` package read configs without this package. The command line filters
Beam's start-up noise itself (``pipeline.logs.configure_cli_logging``) before any command imports Beam.
"""

"""The training side of stemforge: a reader of the pipeline's committed shards now, the trainer and evaluation
later. It imports no Beam (nor the `pipeline` package), so it installs and runs where training runs."""

from stemforge.training.reader import ShardDataset

__all__ = ["ShardDataset"]

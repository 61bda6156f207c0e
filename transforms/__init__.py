"""transforms package (being built)."""

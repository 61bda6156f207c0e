"""model package (being built)."""

"""pipeline package (being built)."""

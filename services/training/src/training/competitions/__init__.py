"""competitions."""

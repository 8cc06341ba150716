"""courses."""

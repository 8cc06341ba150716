"""cadres."""

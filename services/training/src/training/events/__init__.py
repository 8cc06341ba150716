"""Events: what training consumes (handlers.py) and publishes (publish.py)."""

"""Events: what stations consumes (handlers.py) and publishes (publish.py)."""

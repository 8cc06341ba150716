"""Events: what membership publishes (`publish.py`). It consumes none yet."""

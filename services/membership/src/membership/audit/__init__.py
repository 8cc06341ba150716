"""The audit trail of state transitions."""

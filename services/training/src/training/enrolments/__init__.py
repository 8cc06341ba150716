"""enrolments."""

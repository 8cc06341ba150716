"""Membership service: union organisations, members and admissions (入会)."""

"""Nearby search: the 15-minute union service circle."""

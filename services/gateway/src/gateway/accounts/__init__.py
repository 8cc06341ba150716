"""Accounts and tokens: sign-in, API keys, and the one place that resolves the caller."""

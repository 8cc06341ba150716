"""Gonghui's shared library: the spine every service stands on."""

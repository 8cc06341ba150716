"""Rosters (花名册): the member lists exchanged with union federations as files."""

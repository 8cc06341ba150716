"""Gonghui stations: worker service stations and the 15-minute service circle."""

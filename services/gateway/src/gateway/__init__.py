"""The gateway: Gonghui's one front door."""

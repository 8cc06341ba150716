"""Administrative units (行政区划) that union organisations are attached to."""

"""Bolt listeners, one module per feature; each has `register(app, bot)`."""

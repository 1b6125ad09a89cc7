"""Sleuth's intelligence: model providers, the agent loop, subagents, guardrails and report schemas.

It never imports `bot`: the world it needs is described by protocols here and implemented there.
"""

"""Tools the agents call: typed, read-only functions over the world's protocols, and their guards."""

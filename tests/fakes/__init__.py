"""Local servers that speak real wire formats, for tests that drive the real client SDKs."""

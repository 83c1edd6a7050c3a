"""Helpers every test package shares: real brokers, an agent process, bundles, fixtures data."""

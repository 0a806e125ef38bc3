"""Benchmarks, not tests: the crawl against the naive design it replaces, with Helix and D1 latencies."""

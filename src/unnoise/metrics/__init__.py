"""Metrics, each reported beside its real-vs-real floor."""

"""Reusable Quix Streams sources shipped with the kraken-trades pipelines."""

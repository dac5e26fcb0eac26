"""Dataframe steps of the pipelines."""

"""The benchmark: the trades pipeline against a plain direct loop and a producer ceiling.

Run it with `make bench` (or `python -m bench`); see `bench/run.py` for the options.
"""

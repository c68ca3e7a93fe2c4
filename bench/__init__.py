"""CityWatch benchmarks: run each as ``.venv/bin/python -m bench.NAME --help``.

Results are printed (one JSON line, then a human summary) and written to ``bench/out/``.
"""

"""The scenarios of ``benchmarks/run.py``, one module each (see ``benchmarks/README.md``)."""

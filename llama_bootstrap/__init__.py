"""What ``llama.py`` needs around the pipeline on a developer's machine: the embedded PostgreSQL server
(``local_postgres``, ``pg_binaries``, ``pg_account``, ``pg_password``) and the readable report of a run
(``run_report``).

Not part of the shipped package (``pip install .`` and the image carry ``llama_pipeline`` only): it runs
from the repository, in the ``.venv`` that ``llama.py`` builds from ``requirements-dev.lock``.
"""

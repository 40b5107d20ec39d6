"""The code location: everything under ``llama_pipeline/defs``, loaded without side effects."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    # From the defs module itself, not from pyproject.toml's [tool.dg.project] (what
    # dg.load_from_defs_folder reads): an installed wheel has no pyproject.toml beside the package.
    # Quiet about beta/preview APIs (backfill_policy, the defs loader), as load_from_defs_folder is.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.ComponentTree(
            defs_module=importlib.import_module("llama_pipeline.defs"),
            project_root=Path(__file__).resolve().parent.parent,
            # No name of its own: the location takes the name its loader gives it (workspace.yaml's
            # "llama_pipeline", dg's [tool.dg.project] one, or -m's module), with no mismatch warning.
        ).build_defs()

"""The data-quality rules behind the asset checks."""

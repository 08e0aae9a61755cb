"""Hydra plugins shipped with sngan-repro (Hydra finds plugins only in the hydra_plugins namespace package)."""

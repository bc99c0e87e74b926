"""Reproducible re-analysis of Cao et al. 2025 (J Transl Med 23:391)."""

__version__ = "0.2.0"

"""Rendering: number formatting, escaping, disclosure, tables and figures."""

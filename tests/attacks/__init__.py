"""Attacks from the penetration test, one file per kind: each failed on main, each must fail."""

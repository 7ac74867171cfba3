"""Custos: a privacy-first customer-management server."""

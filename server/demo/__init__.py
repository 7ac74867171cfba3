"""Deterministic demo data (`custos demo`): `builder` draws it step by step from one
seeded generator, `data` holds its raw material, `repository` its SQL."""

from server.demo.builder import DemoBuilder, DemoReport
from server.demo.data import COMPLAINT_STATES

__all__ = ["COMPLAINT_STATES", "DemoBuilder", "DemoReport"]

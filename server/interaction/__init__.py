"""Interactions: every contact with a customer, with timers for inbound consultations."""

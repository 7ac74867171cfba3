"""Complaints: a state machine with deadlines by severity and an event per move."""

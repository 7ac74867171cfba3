"""Custos against PostGraphile 4 (the peer) and the audit-ledger goals: `python -m bench.peer`."""

"""Persisted documents: Automatic Persisted Queries and trusted documents (an allow-list
of the documents a production server runs). README "Persisted documents"."""

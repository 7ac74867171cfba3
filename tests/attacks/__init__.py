"""Attacks from the privacy penetration test, replayed through the API on both databases,
one file per kind.

Each test is one attack that worked before the access model was rebuilt: it fails if the
attack works again.
"""

"""Attacks from the privacy penetration test, replayed through the API on both databases.

Each test is one attack that worked before the access model was rebuilt: it fails if the
attack works again.
"""

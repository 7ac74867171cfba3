"""Data-subject rights: consent per purpose, export, erasure (crypto-shredding), retention."""

"""Customer files."""

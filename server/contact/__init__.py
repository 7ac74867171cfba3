"""Contact points of customer files: further numbers, WeChat IDs, contact persons."""

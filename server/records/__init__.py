"""Records by id alone: which kind of record an id names, for global object lookup."""

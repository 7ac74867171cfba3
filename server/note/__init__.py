"""Free-text notes on customer files (备注), each version sealed and kept."""

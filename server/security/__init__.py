"""The security stream: refusals before any operation runs (see `stream`)."""

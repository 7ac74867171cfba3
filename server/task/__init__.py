"""Tasks and reminders."""

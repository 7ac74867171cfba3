"""People's local accounts: passwords, second factors, console sessions."""

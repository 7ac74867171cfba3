"""The console at `/console`: server-rendered pages for agents, compliance officers, admins
and managers, each a client of the same GraphQL API as any other (see `routes`)."""

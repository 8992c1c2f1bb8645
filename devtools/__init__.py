"""Development tooling: the embedded PostgreSQL and Redis, and the process runner behind
`make run`. Production code never imports it."""

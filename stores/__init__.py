"""Redis stores: connections, presence, typing state and the delivery counters (caps, batch
windows, rate limits), each over the key builders in core.keys. No SQL and no rule here."""

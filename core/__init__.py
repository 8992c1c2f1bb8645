"""Pure rules and shared definitions: the catalogue of names, settings, Redis key builders,
and the delivery rules (quiet hours, caps, batching, presence, retries) as functions of their
facts and `now`. No database, Redis, network or clock inside."""

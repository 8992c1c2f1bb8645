"""The in-process real-time services the gateway and the jobs call: presence, typing, and
who is live. They emit through the runtime's emitter and keep no state of their own."""

"""How work enters Pulse: request validation (the schemas of the send and of a real-time
event), enqueueing jobs by their dotted path after a commit, and the in-process client for
other backend services (intake.client). Never delivers anything itself."""

"""The functions RQ runs, and nothing else: each takes ids or plain values, opens its own
session, and is safe to run twice. They are enqueued by dotted path (intake.dispatch,
scheduler.py); a job's private helpers live beside it (jobs/delivery/)."""

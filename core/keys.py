"""Every Redis key Pulse writes (RQ keeps its own), built in one place with the prefix."""

from __future__ import annotations


def provider_bucket(prefix: str, provider: str) -> str:
    """The token bucket all workers share for one provider's send rate."""
    return f"{prefix}bucket:{provider}"


def provider_alarms(prefix: str) -> str:
    """Hash provider -> last credentials/configuration error, for operators."""
    return f"{prefix}alarms:providers"


def sink_pushes(prefix: str) -> str:
    """List of the last pushes the development sink accepted (newest first)."""
    return f"{prefix}sink:pushes"

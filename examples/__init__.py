"""Examples that use the gateway (not part of the ivr package)."""

"""Reserved for later parts of the flow (see the issues)."""

"""People: identity resolution and merge, attributes, lookups and erasure."""

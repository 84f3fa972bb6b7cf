"""The failed-events store: every refused event, kept with its raw payload and reason."""

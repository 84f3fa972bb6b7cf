"""Reading events: a person's timeline and the workspace's recent events."""

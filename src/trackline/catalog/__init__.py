"""The event catalog: every event name and property a workspace sends, typed; declared types
enforced at ingest."""

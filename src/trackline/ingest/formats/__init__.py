"""One parser per wire format. Each turns a request body into canonical events or per-item
errors; nothing after this step knows which format an event came in."""

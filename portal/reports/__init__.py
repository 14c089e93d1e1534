"""Read models: what the dashboard, the deliverable page, the client review page, finance,
metrics and the client history show. Queries only; nothing here changes state."""

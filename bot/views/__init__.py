"""Block Kit builders: one module per message or view kind."""

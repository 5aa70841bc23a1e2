"""Baton's own HTTP API (not Slack's): ingest endpoints for accounts and usage signals."""

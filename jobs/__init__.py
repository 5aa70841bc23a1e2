"""Scheduled work: the daily scan, the signal pull and the outbox drain, registered once."""

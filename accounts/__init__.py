"""What Baton knows about a customer account, shared by the handoff, the alerts and the digest:
its name and lookup key (names, lookup), its touch tier (tiers: the one rule), its health score and
the reasons behind it (health, reasons), and the two kinds of attention it can need (kinds).
Plain code over storage/: no Slack, no alerts, no digest."""

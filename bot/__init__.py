"""Slack glue: the only package that knows Slack. Listeners stay thin and call ``handoff`` services."""

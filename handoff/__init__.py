"""The sales-to-CS handoff, as plain domain code: no Slack here, so a CLI, a job or a test can drive it."""

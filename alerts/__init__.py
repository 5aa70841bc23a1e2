"""Usage signals, health scores and churn-risk / upsell alerts, as plain domain code: no Slack here."""

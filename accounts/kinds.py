"""The two readings of an account that call for a person: it may churn, or it may outgrow its plan.
Alerts, the model and the digest name them the same way."""

CHURN, UPSELL = "churn_risk", "upsell"

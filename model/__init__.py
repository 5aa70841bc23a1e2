"""Churn and upsell models learned from the team's own history: features, labels, training, backtest."""

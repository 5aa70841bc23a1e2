"""The alert-quality definitions live in model/metrics.py: the product's backtest prints the same figures."""

from model.metrics import Caught, auc, caught_ahead, followed_share, ratio, top_share_lift

__all__ = ["Caught", "auc", "caught_ahead", "followed_share", "ratio", "top_share_lift"]

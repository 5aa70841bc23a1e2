"""The weekly digest: the KPIs inside sales and customer success share, computed from stored history."""

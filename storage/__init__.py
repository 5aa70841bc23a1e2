"""Persistence: the engine, one unit of work per request or job, the models and their migrations."""

from storage.db import Database

__all__ = ["Database"]

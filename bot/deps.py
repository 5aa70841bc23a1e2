"""What every listener needs, built once per process and handed to ``register``."""

from __future__ import annotations

from dataclasses import dataclass

from bot.directory import Directory
from bot.i18n import Translator, translator
from clock import Clock
from handoff.service import Actor
from settings import Settings
from storage import Database


@dataclass(frozen=True)
class Deps:
    db: Database
    settings: Settings
    clock: Clock
    directory: Directory

    def tr_for(self, user_id: str | None) -> Translator:
        return translator(self.directory.locale(user_id))

    @property
    def channel_tr(self) -> Translator:
        """Channel posts have many readers: they use the workspace language."""
        return translator(self.settings.locale)

    def actor(self, user_id: str) -> Actor:
        return Actor(user_id=user_id, is_cs=self.directory.is_cs(user_id))

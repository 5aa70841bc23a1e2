"""Every callback, action and block id the app sends and routes on, in one place."""

from enum import StrEnum


class Callback(StrEnum):
    HANDOFF_NEW = "handoff_new"
    HANDOFF_EDIT = "handoff_edit"
    QUESTION = "handoff_question"
    CHECKLIST = "handoff_checklist"


class Action(StrEnum):
    ACCEPT = "handoff_accept"
    ASSIGN = "handoff_assign"
    ASK = "handoff_ask"
    VIEW = "handoff_view"
    EDIT = "handoff_edit"


class Block(StrEnum):
    CARD_ACTIONS = "handoff_actions"
    QUESTION = "question"

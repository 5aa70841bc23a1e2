"""Every callback, action and block id the app sends and routes on, in one place."""

from enum import StrEnum


class Callback(StrEnum):
    HANDOFF_NEW = "handoff_new"
    HANDOFF_EDIT = "handoff_edit"
    QUESTION = "handoff_question"
    CHECKLIST = "handoff_checklist"
    TOUCH = "touch_log"
    HANDOFF_CRM = "handoff_crm"  # the modal opened from a won deal's "Start handoff" button


class Action(StrEnum):
    ACCEPT = "handoff_accept"
    ASSIGN = "handoff_assign"
    ASK = "handoff_ask"
    VIEW = "handoff_view"
    EDIT = "handoff_edit"
    ALERT_ACK = "alert_ack"
    ALERT_ASSIGN = "alert_assign"
    ALERT_SNOOZE = "alert_snooze"
    ALERT_RESOLVE = "alert_resolve"
    ALERT_HAND_TO_IS = "alert_hand_to_is"
    LOG_TOUCH = "touch_log_open"
    CRM_START = "crm_start_handoff"


class Block(StrEnum):
    CARD_ACTIONS = "handoff_actions"
    QUESTION = "question"
    ALERT_ACTIONS = "alert_actions"
    TOUCH_KIND = "touch_kind"
    TOUCH_DAY = "touch_day"
    TOUCH_NOTE = "touch_note"

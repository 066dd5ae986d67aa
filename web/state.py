"""Typed keys for what the composition root puts on the aiohttp application."""

from __future__ import annotations

import socketio
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cti.link import PbxLink
from desk.clock import Clock
from desk.events import EventBus
from desk.mail_sender import MailSender
from desk.settings import Settings
from desk.survey_answers import SurveyAnswers
from desk.survey_tokens import TokenKey
from desk.surveys import SurveyScheduler
from routing.assignment import Attendance, TicketAssigner
from routing.attendance import SharedAttendance
from routing.sla_admin import SlaSetupSource
from routing.sla_board import SlaBoardFeed
from routing.sla_keeper import SlaClockKeeper
from routing.watcher import SlaWatcher
from web.switchboard import Switchboard

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
# Read-only work (who a token is, caller cards): never queues behind SQLite's writer.
READS = web.AppKey("reads", async_sessionmaker[AsyncSession])
# SQLite: short reads on the loop's thread for the pop's caller card (desk.db.create_engine).
POP_READS = web.AppKey("pop_reads", async_sessionmaker[AsyncSession])
BUS = web.AppKey("bus", EventBus)
SIO = web.AppKey("sio", socketio.AsyncServer)
# This process's PBX link: running only while it holds the link's lease.
LINK = web.AppKey("pbx_link", PbxLink)
# The PBX as every process sees it: its own link, or the holder's (web/switchboard.py).
SWITCHBOARD = web.AppKey("switchboard", Switchboard)
SLA_KEEPER = web.AppKey("sla_keeper", SlaClockKeeper)
SLA_WATCHER = web.AppKey("sla_watcher", SlaWatcher)
SLA_SOURCE = web.AppKey("sla_source", SlaSetupSource)
SLA_BOARD_FEED = web.AppKey("sla_board_feed", SlaBoardFeed)
# This process's browsers and the phone states it heard (metrics count these).
ATTENDANCE = web.AppKey("attendance", Attendance)
# With Redis: every process's attendance merged, what the assigner routes with
# (web/attendance_relay.py); absent without Redis, where ATTENDANCE is all there is.
SHARED_ATTENDANCE = web.AppKey("shared_attendance", SharedAttendance)
ASSIGNER = web.AppKey("assigner", TicketAssigner)
# Load weights per priority: the router's, so the board shows load as routing sees it.
LOAD_WEIGHTS: web.AppKey[dict[str, float]] = web.AppKey("load_weights")
MAIL_SENDER = web.AppKey("mail_sender", MailSender)
# Satisfaction surveys: the answer recorder, the link's signing key, the scheduler
# (the write paths find it through their sessions too).
SURVEY_ANSWERS = web.AppKey("survey_answers", SurveyAnswers)
SURVEY_TOKEN_KEY = web.AppKey("survey_token_key", TokenKey)
SURVEY_SCHEDULER = web.AppKey("survey_scheduler", SurveyScheduler)

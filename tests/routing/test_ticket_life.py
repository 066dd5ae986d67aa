"""One ticket's whole life under the SLA, driven by a FakeClock through desk's
services, the real keeper and the real watcher: created before Labour Day and
a weekend, answered late, pending, customer replies, warnings, breaches, every
escalation level, solved, reopened across Ascension Day.  Every due time is
checked to the second (Berlin summer time, UTC+2).

Policy: first response 8h (warn at 80 %), next response 8h (warn 1h before),
resolution 30h (warn 15m before) on Mon-Fri 08:00-18:00 Europe/Berlin with
Berlin's holidays; escalation: the assignee at breach, the team lead 2h past
breach, the supervisors 10h past breach.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from desk.clock import FakeClock
from desk.events import DomainEvent
from desk.mail_sender import MailSender
from desk.outbox import outbox_messages
from routing.sla_keeper import SlaBreached, SlaWarned, TicketEscalated
from routing.watcher import SlaWatcher
from tests.conftest import Database
from tests.desk.mail_support import MailServer, relay_to
from tests.routing.sla_support import World, berlin

SECOND = timedelta(seconds=1)
FIRST, NEXT, RESOLUTION = "first_response", "next_response", "resolution"


def told(event: DomainEvent) -> str:
    if isinstance(event, SlaWarned):
        return f"{event.clock} warning"
    if isinstance(event, SlaBreached):
        return f"{event.clock} breached at {event.breached_at.astimezone(UTC):%m-%d %H:%M:%S}Z"
    if isinstance(event, TicketEscalated):
        return f"{event.clock} level {event.level} to {event.to_name}"
    return event.name


async def at(world: World, watcher: SlaWatcher, moment: datetime) -> list[str]:
    """Move the clock, let the watcher fire what is due, say what it announced."""
    world.clock.set(moment)
    before = len(world.events)
    await watcher.fire_due()
    return [told(event) for event in world.events[before:]]


async def test_a_ticket_life_across_a_weekend_and_holidays_keeps_every_due_time_to_the_second(
    database: Database,
) -> None:
    clock = FakeClock(berlin(2026, 4, 30, 14))  # Thursday; Friday 1 May is Labour Day
    world = await World.create(database, clock)
    # Never started: escalation mail stays in the outbox, where the test reads it.
    sender = MailSender(sessions=database.sessions, clock=clock, relay=relay_to(MailServer().port))
    watcher = world.watcher(mail=sender)
    ticket = await world.open()

    # Created Thursday 14:00.  First response: 4h Thursday, Friday is a holiday,
    # the weekend is closed, 4h Monday → Monday 12:00; warning at 6h24m used.
    # Resolution: 4h + Monday 10h + Tuesday 10h + Wednesday 6h → Wednesday 14:00.
    assert await world.pending(ticket) == [
        (FIRST, "warning", 0, berlin(2026, 5, 4, 10, 24)),
        (FIRST, "breach", 0, berlin(2026, 5, 4, 12)),
        (FIRST, "escalation", 1, berlin(2026, 5, 4, 12)),
        (FIRST, "escalation", 2, berlin(2026, 5, 4, 14)),
        (FIRST, "escalation", 3, berlin(2026, 5, 5, 12)),
        (RESOLUTION, "warning", 0, berlin(2026, 5, 6, 13, 45)),
        (RESOLUTION, "breach", 0, berlin(2026, 5, 6, 14)),
        (RESOLUTION, "escalation", 1, berlin(2026, 5, 6, 14)),
        (RESOLUTION, "escalation", 2, berlin(2026, 5, 6, 16)),
        (RESOLUTION, "escalation", 3, berlin(2026, 5, 7, 14)),
    ]
    clocks = await world.clocks(ticket)
    assert (clocks[FIRST].due_at, clocks[FIRST].warn_at) == (
        berlin(2026, 5, 4, 12),
        berlin(2026, 5, 4, 10, 24),
    )
    assert clocks[NEXT].due_at is None

    # Nothing over the long weekend; the warning on the second.
    assert await at(world, watcher, berlin(2026, 5, 4, 10, 23, 59)) == []
    assert await at(world, watcher, berlin(2026, 5, 4, 10, 24)) == [f"{FIRST} warning"]
    assert await at(world, watcher, berlin(2026, 5, 4, 11, 59, 59)) == []
    assert await at(world, watcher, berlin(2026, 5, 4, 12)) == [
        f"{FIRST} breached at 05-04 10:00:00Z",
        f"{FIRST} level 1 to assignee Alice",
    ]
    assert (await world.clocks(ticket))[FIRST].breached_at == berlin(2026, 5, 4, 12)

    # Monday 13:00 the first reply: first response stops (still breached at 12:00),
    # its later escalations are dropped.  13:30 pending: resolution pauses at 9h30m.
    clock.set(berlin(2026, 5, 4, 13))
    await world.reply(ticket)
    clock.set(berlin(2026, 5, 4, 13, 30))
    await world.change(ticket, status="pending")
    assert await world.pending(ticket) == []
    assert await at(world, watcher, berlin(2026, 5, 6, 9, 59, 59)) == []

    # Wednesday 10:00 the customer answers: the pause held Monday 4h30m + Tuesday
    # 10h + Wednesday 2h.  Resolution has 20h30m left → Friday 10:30; next
    # response runs 8h → Wednesday 18:00, the closing time itself.
    clock.set(berlin(2026, 5, 6, 10))
    await world.customer_says(ticket)
    assert await world.pending(ticket) == [
        (NEXT, "warning", 0, berlin(2026, 5, 6, 17)),
        (NEXT, "breach", 0, berlin(2026, 5, 6, 18)),
        (NEXT, "escalation", 1, berlin(2026, 5, 6, 18)),
        (NEXT, "escalation", 2, berlin(2026, 5, 7, 10)),
        (NEXT, "escalation", 3, berlin(2026, 5, 7, 18)),  # all of Thursday
        (RESOLUTION, "warning", 0, berlin(2026, 5, 8, 10, 15)),
        (RESOLUTION, "breach", 0, berlin(2026, 5, 8, 10, 30)),
        (RESOLUTION, "escalation", 1, berlin(2026, 5, 8, 10, 30)),
        (RESOLUTION, "escalation", 2, berlin(2026, 5, 8, 12, 30)),
        # 10h past Friday 10:30: 7h30m on Friday, the weekend, Monday 08:00 + 2h30m.
        (RESOLUTION, "escalation", 3, berlin(2026, 5, 11, 10, 30)),
    ]
    # A second message does not move the next-response due time.
    clock.set(berlin(2026, 5, 6, 11))
    await world.customer_says(ticket)
    assert (await world.clocks(ticket))[NEXT].due_at == berlin(2026, 5, 6, 18)

    assert await at(world, watcher, berlin(2026, 5, 6, 16, 59, 59)) == []
    assert await at(world, watcher, berlin(2026, 5, 6, 17)) == [f"{NEXT} warning"]
    clock.set(berlin(2026, 5, 6, 17, 30))
    await world.reply(ticket)  # answered in time: no breach

    # Thursday 09:00 another message starts a new next-response cycle (due 17:00):
    # its warning and breach fire again, once each.
    clock.set(berlin(2026, 5, 7, 9))
    await world.customer_says(ticket)
    clocks = await world.clocks(ticket)
    assert (clocks[NEXT].cycle, clocks[NEXT].due_at, clocks[NEXT].breached_at) == (
        2,
        berlin(2026, 5, 7, 17),
        None,
    )
    assert await at(world, watcher, berlin(2026, 5, 7, 15, 59, 59)) == []
    assert await at(world, watcher, berlin(2026, 5, 7, 16)) == [f"{NEXT} warning"]
    assert await at(world, watcher, berlin(2026, 5, 7, 17)) == [
        f"{NEXT} breached at 05-07 15:00:00Z",
        f"{NEXT} level 1 to assignee Alice",
    ]
    clock.set(berlin(2026, 5, 7, 17, 30))
    await world.reply(ticket)

    # Resolution on Friday: warning, breach and the first two levels; the third
    # waits over the weekend until Monday 10:30.
    assert await at(world, watcher, berlin(2026, 5, 8, 10, 14, 59)) == []
    assert await at(world, watcher, berlin(2026, 5, 8, 10, 15)) == [f"{RESOLUTION} warning"]
    assert await at(world, watcher, berlin(2026, 5, 8, 10, 30)) == [
        f"{RESOLUTION} breached at 05-08 08:30:00Z",
        f"{RESOLUTION} level 1 to assignee Alice",
    ]
    assert await at(world, watcher, berlin(2026, 5, 8, 12, 29, 59)) == []
    assert await at(world, watcher, berlin(2026, 5, 8, 12, 30)) == [
        f"{RESOLUTION} level 2 to team lead Tom Lead"
    ]
    assert await at(world, watcher, berlin(2026, 5, 11, 10, 29, 59)) == []
    assert await at(world, watcher, berlin(2026, 5, 11, 10, 30)) == [
        f"{RESOLUTION} level 3 to supervisors"
    ]

    # Solved Monday 11:00: everything stops, nothing is left to fire.
    clock.set(berlin(2026, 5, 11, 11))
    await world.change(ticket, status="solved")
    assert await world.pending(ticket) == []

    # Wednesday 14:00 the customer writes again: the ticket reopens, resolution
    # restarts (its breach stays at Friday 10:30, its levels have all fired) and
    # next response runs 4h Wednesday, Thursday is Ascension Day → Friday 12:00.
    clock.set(berlin(2026, 5, 13, 14))
    await world.customer_says(ticket)
    clocks = await world.clocks(ticket)
    assert clocks[RESOLUTION].breached_at == berlin(2026, 5, 8, 10, 30)
    assert clocks[RESOLUTION].escalated_level == 3
    assert await world.pending(ticket) == [
        (NEXT, "warning", 0, berlin(2026, 5, 15, 11)),
        (NEXT, "breach", 0, berlin(2026, 5, 15, 12)),
        (NEXT, "escalation", 1, berlin(2026, 5, 15, 12)),
        (NEXT, "escalation", 2, berlin(2026, 5, 15, 14)),
        (NEXT, "escalation", 3, berlin(2026, 5, 18, 12)),
    ]
    assert await at(world, watcher, berlin(2026, 5, 15, 10, 59, 59)) == []
    assert await at(world, watcher, berlin(2026, 5, 15, 11)) == [f"{NEXT} warning"]
    clock.set(berlin(2026, 5, 15, 11, 30))
    await world.reply(ticket)
    await world.change(ticket, status="solved")
    assert await world.pending(ticket) == []
    assert await at(world, watcher, berlin(2026, 6, 1)) == []

    # The whole life on the audit trail, and each step announced exactly once.
    history = [text for _, text in await world.sla_history(ticket)]
    assert history == [
        "first response started",
        "resolution started",
        "first response warning (due 2026-05-04T10:00:00+00:00)",
        "first response breached (due 2026-05-04T10:00:00+00:00)",
        "first response escalated to level 1: assignee Alice",
        "first response stopped",
        "resolution paused",
        "resolution resumed after 16h30m business time",
        "next response started",
        "next response warning (due 2026-05-06T16:00:00+00:00)",
        "next response stopped",
        "next response started",
        "next response warning (due 2026-05-07T15:00:00+00:00)",
        "next response breached (due 2026-05-07T15:00:00+00:00)",
        "next response escalated to level 1: assignee Alice",
        "next response stopped",
        "resolution warning (due 2026-05-08T08:30:00+00:00)",
        "resolution breached (due 2026-05-08T08:30:00+00:00)",
        "resolution escalated to level 1: assignee Alice",
        "resolution escalated to level 2: team lead Tom Lead",
        "resolution escalated to level 3: supervisors",
        "resolution stopped",
        "resolution restarted",
        "next response started",
        "next response warning (due 2026-05-15T10:00:00+00:00)",
        "next response stopped",
        "resolution stopped",
    ]
    assert len(world.of(SlaWarned)) == 5
    assert len(world.of(SlaBreached)) == 3
    assert [(e.clock, e.level) for e in world.of(TicketEscalated)] == [
        (FIRST, 1),
        (NEXT, 1),
        (RESOLUTION, 1),
        (RESOLUTION, 2),
        (RESOLUTION, 3),
    ]
    # Levels 2 and 3 ask for e-mail: the team lead, then the supervisors.
    async with database.sessions() as session:
        mail = await outbox_messages(session)
    assert [message.to for message in mail] == [["tom@example.com"], ["sam@example.com"]]

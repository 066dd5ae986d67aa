"""A bad score reaches a person; staff read answers, reports and CSV, manage
templates and opt-outs, and send a survey by hand — all through the API."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import socketio

from desk.customers import CustomerDraft, EmailIn, create_customer
from desk.events import EventBus, UnitOfWork
from desk.models import Tier
from desk.survey_events import LowScoreAcknowledged, LowScoreReceived, SurveysAnswered
from tests.web.survey_support import SurveyDesk, mail_server, surveys
from web.notifier import rooms_of

__all__ = ["mail_server", "surveys"]


async def _answer(desk: SurveyDesk, **fields: str) -> None:
    token = await desk.token()
    response = await desk.client.post(f"/s/{token}", data=fields, allow_redirects=False)
    assert response.status == 303, await response.text()


async def _until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_low_score_reopens_the_ticket_and_alerts_the_team_lead_and_supervisors(
    surveys: SurveyDesk,
) -> None:
    ticket_id = await surveys.solved_ticket()

    await _answer(surveys, csat="1", comment="Nobody listened.")

    assert (await surveys.ticket(ticket_id))["status"] == "open"
    [alert] = [e for e in surveys.events if isinstance(e, LowScoreReceived)]
    assert (alert.ticket_id, alert.csat, alert.lead_user_id, alert.reopened_ticket) == (
        ticket_id,
        1,
        surveys.people.lead,
        True,
    )
    assert alert.comment == "Nobody listened." and alert.reason == "CSAT 1 ≤ 2"
    assert rooms_of(alert.recipients) == ["supervisors", f"user:{surveys.people.lead}"]


async def test_the_low_score_alert_reaches_the_team_leads_screen_live(
    surveys: SurveyDesk,
) -> None:
    await surveys.solved_ticket()
    client = socketio.AsyncClient(reconnection=False)
    received: list[tuple[str, Any]] = []
    client.on("*", lambda event, data: received.append((event, data)))
    await client.connect(
        str(surveys.client.make_url("/")),
        auth={"token": surveys.tokens["tom"]},
        transports=["websocket"],
        wait_timeout=5,
    )
    try:
        await _answer(surveys, csat="2")
        await _until(lambda: any(name == "survey_low_score" for name, _ in received))
    finally:
        await client.disconnect()
    [payload] = [data for name, data in received if name == "survey_low_score"]
    assert payload["csat"] == 2 and payload["follow_up_id"] >= 1


async def test_a_good_score_reopens_nothing_and_raises_no_alert(surveys: SurveyDesk) -> None:
    ticket_id = await surveys.solved_ticket()

    await _answer(surveys, csat="4", nps="9")

    assert (await surveys.ticket(ticket_id))["status"] == "solved"
    assert not [e for e in surveys.events if isinstance(e, LowScoreReceived)]
    [answered] = [e for e in surveys.events if isinstance(e, SurveysAnswered)]
    assert answered.agent_user_id == surveys.people.agent
    assert [(note.csat, note.nps, note.changed) for note in answered.answers] == [(4, 9, False)]
    assert rooms_of(answered.recipients) == ["supervisors", f"user:{surveys.people.agent}"]


async def test_an_nps_at_or_under_the_threshold_is_a_low_score_too(surveys: SurveyDesk) -> None:
    await surveys.solved_ticket()

    await _answer(surveys, csat="4", nps="6")

    [alert] = [e for e in surveys.events if isinstance(e, LowScoreReceived)]
    assert alert.reason == "NPS 6 ≤ 6"


async def test_a_low_score_stays_on_the_board_until_acknowledged_with_a_note(
    surveys: SurveyDesk,
) -> None:
    await surveys.solved_ticket()
    await _answer(surveys, csat="1")
    board = await surveys.client.get("/api/v1/surveys/follow-ups", headers=surveys.auth("tom"))
    [item] = (await board.json())["items"]
    assert (item["csat"], item["customer"], item["acknowledged_at"]) == (
        1,
        "Erika Mustermann",
        None,
    )
    url = f"/api/v1/surveys/follow-ups/{item['id']}/acknowledge"

    without_note = await surveys.client.post(url, json={"note": "  "}, headers=surveys.auth("tom"))
    acknowledged = await surveys.client.post(
        url, json={"note": "Called her back; refund issued."}, headers=surveys.auth("tom")
    )
    again = await surveys.client.post(url, json={"note": "again"}, headers=surveys.auth("tom"))

    assert without_note.status == 422 and acknowledged.status == 200 and again.status == 409
    assert (await acknowledged.json())["note"] == "Called her back; refund issued."
    board = await surveys.client.get("/api/v1/surveys/follow-ups", headers=surveys.auth("tom"))
    assert (await board.json())["items"] == []
    everything = await surveys.client.get(
        "/api/v1/surveys/follow-ups?open=false", headers=surveys.auth("tom")
    )
    assert [i["note"] for i in (await everything.json())["items"]] == [
        "Called her back; refund issued."
    ]
    assert [type(e) for e in surveys.events if isinstance(e, LowScoreAcknowledged)] == [
        LowScoreAcknowledged
    ]


async def test_an_agent_who_is_not_the_team_lead_may_not_acknowledge(surveys: SurveyDesk) -> None:
    await surveys.solved_ticket()
    await _answer(surveys, csat="1")
    board = await surveys.client.get("/api/v1/surveys/follow-ups", headers=surveys.auth("bob"))
    [item] = (await board.json())["items"]

    response = await surveys.client.post(
        f"/api/v1/surveys/follow-ups/{item['id']}/acknowledge",
        json={"note": "seen"},
        headers=surveys.auth("bob"),
    )

    assert response.status == 403


async def test_changing_a_low_score_to_a_good_one_closes_its_follow_up(
    surveys: SurveyDesk,
) -> None:
    await surveys.solved_ticket()
    await _answer(surveys, csat="1")
    surveys.clock.advance(timedelta(minutes=5))

    await _answer(surveys, csat="5")

    board = await surveys.client.get("/api/v1/surveys/follow-ups", headers=surveys.auth("tom"))
    assert (await board.json())["items"] == []


async def test_every_answer_is_on_the_customers_timeline_and_the_tickets_history(
    surveys: SurveyDesk,
) -> None:
    ticket_id = await surveys.solved_ticket()

    await _answer(surveys, csat="5", comment="Great")

    timeline = await surveys.client.get(
        f"/api/v1/customers/{surveys.people.customer}/timeline", headers=surveys.auth("alice")
    )
    [entry] = [i for i in (await timeline.json())["items"] if i["kind"] == "survey"]
    assert entry["summary"] == "Survey answered: CSAT 5/5, “Great”"
    history = await surveys.client.get(
        f"/api/v1/tickets/{ticket_id}/history", headers=surveys.auth("alice")
    )
    [change] = [c for c in (await history.json())["items"] if c["field"] == "satisfaction"]
    assert change["new"] == "CSAT 5/5, “Great”"
    listed = await surveys.client.get(
        f"/api/v1/surveys?ticket_id={ticket_id}", headers=surveys.auth("alice")
    )
    [survey] = (await listed.json())["items"]
    assert (survey["csat"], survey["comment"]) == (5, "Great")


async def _customer(desk: SurveyDesk, name: str, email: str, tier: str = "standard") -> int:
    async with UnitOfWork(sessions=desk.database.sessions, bus=EventBus()) as uow:
        customer = await create_customer(
            uow,
            CustomerDraft(name=name, tier=Tier(tier), emails=[EmailIn(address=email)]),
            region="DE",
            now=desk.clock.now(),
        )
        await uow.commit()
        return customer.id


async def test_reports_give_csat_percent_average_nps_and_response_rate_by_tier(
    surveys: SurveyDesk,
) -> None:
    start = surveys.clock.now()
    answers = [
        ("gold", "5", "10"),
        ("gold", "4", "6"),
        ("standard", "2", "9"),
        ("gold", None, None),
    ]
    for n, (tier, csat, nps) in enumerate(answers):
        customer = await _customer(surveys, f"C{n}", f"c{n}@example.org", tier)
        await surveys.solved_ticket(customer_id=customer)
        if csat is not None:
            await _answer(surveys, csat=csat, nps=nps or "")
    surveys.clock.advance(timedelta(minutes=30))
    await surveys.send_due()
    query = {"from": start.isoformat(), "to": (start + timedelta(days=1)).isoformat()}

    response = await surveys.client.get(
        "/api/v1/surveys/reports", params={**query, "by": "tier"}, headers=surveys.auth("tom")
    )

    assert response.status == 200
    report = await response.json()
    gold = next(g for g in report["groups"] if g["key"] == "gold")["scores"]
    assert (gold["sent"], gold["answered"], gold["response_rate"]) == (3, 2, 66.7)
    assert (gold["csat_percent"], gold["csat_average"], gold["nps"]) == (100.0, 4.5, 0.0)
    total = report["total"]["scores"]
    assert (total["sent"], total["answered"], total["csat_percent"]) == (4, 3, 66.7)


async def test_reports_group_by_agent_with_names(surveys: SurveyDesk) -> None:
    start = surveys.clock.now()
    await surveys.solved_ticket()
    await _answer(surveys, csat="5")

    response = await surveys.client.get(
        "/api/v1/surveys/reports",
        params={
            "from": start.isoformat(),
            "to": (start + timedelta(hours=1)).isoformat(),
            "by": "agent",
        },
        headers=surveys.auth("tom"),
    )

    [group] = (await response.json())["groups"]
    assert (group["key"], group["label"], group["scores"]["csat_percent"]) == (
        str(surveys.people.agent),
        "Alice",
        100.0,
    )


async def test_a_report_window_the_wrong_way_round_is_refused(surveys: SurveyDesk) -> None:
    now = surveys.clock.now()
    response = await surveys.client.get(
        "/api/v1/surveys/reports",
        params={"from": now.isoformat(), "to": (now - timedelta(days=1)).isoformat()},
        headers=surveys.auth("tom"),
    )
    assert response.status == 422


async def test_agents_may_not_read_reports(surveys: SurveyDesk) -> None:
    now = surveys.clock.now()
    response = await surveys.client.get(
        "/api/v1/surveys/reports",
        params={"from": now.isoformat(), "to": (now + timedelta(days=1)).isoformat()},
        headers=surveys.auth("alice"),
    )
    assert response.status == 403


async def test_answers_export_as_csv_with_formulas_neutralised(surveys: SurveyDesk) -> None:
    start = surveys.clock.now()
    await surveys.solved_ticket()
    await _answer(surveys, csat="3", comment='=HYPERLINK("http://evil")', may_contact="no")

    response = await surveys.client.get(
        "/api/v1/surveys/answers.csv",
        params={"from": start.isoformat(), "to": (start + timedelta(days=1)).isoformat()},
        headers=surveys.auth("tom"),
    )

    assert response.status == 200 and response.content_type == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    [row] = list(csv.DictReader(io.StringIO(await response.text())))
    assert (row["customer"], row["agent"], row["team"], row["csat"], row["may_contact"]) == (
        "Erika Mustermann",
        "Alice",
        "Support",
        "3",
        "no",
    )
    assert row["comment"] == '\'=HYPERLINK("http://evil")'


async def test_templates_are_versioned_through_the_api(surveys: SurveyDesk) -> None:
    question = {"key": "csat", "kind": "csat", "required": True, "label": {"en": "Happy?"}}
    created = await surveys.client.post(
        "/api/v1/surveys/templates",
        json={"name": "phone", "channel": "phone", "questions": [question]},
        headers=surveys.auth("tom"),
    )
    assert created.status == 201, await created.text()
    template = await created.json()
    ces = {"key": "ces", "kind": "ces", "label": {"en": "Easy?", "zh": "容易吗"}}

    changed = await surveys.client.patch(
        f"/api/v1/surveys/templates/{template['id']}",
        json={"version": 1, "questions": [question, ces]},
        headers=surveys.auth("tom"),
    )
    stale = await surveys.client.patch(
        f"/api/v1/surveys/templates/{template['id']}",
        json={"version": 1, "active": False},
        headers=surveys.auth("tom"),
    )
    bad = await surveys.client.post(
        "/api/v1/surveys/templates",
        json={"name": "bad", "questions": [question, question]},
        headers=surveys.auth("tom"),
    )

    assert changed.status == 200 and stale.status == 409 and bad.status == 422
    body = await changed.json()
    assert body["current_version"] == 2
    assert [len(v["questions"]) for v in body["versions"]] == [1, 2]


async def test_agents_may_not_change_templates(surveys: SurveyDesk) -> None:
    response = await surveys.client.post(
        "/api/v1/surveys/templates",
        json={"name": "x", "questions": [{"key": "c", "kind": "csat", "label": {"en": "?"}}]},
        headers=surveys.auth("alice"),
    )
    assert response.status == 403


async def test_an_agent_sends_a_survey_now_and_the_period_still_applies(
    surveys: SurveyDesk,
) -> None:
    ticket_id = await surveys.open_ticket()

    sent = await surveys.client.post(
        "/api/v1/surveys", json={"ticket_id": ticket_id}, headers=surveys.auth("alice")
    )
    again = await surveys.client.post(
        "/api/v1/surveys", json={"ticket_id": ticket_id}, headers=surveys.auth("alice")
    )
    forced_by_agent = await surveys.client.post(
        "/api/v1/surveys",
        json={"ticket_id": ticket_id, "ignore_period": True},
        headers=surveys.auth("alice"),
    )
    forced = await surveys.client.post(
        "/api/v1/surveys",
        json={"ticket_id": ticket_id, "ignore_period": True},
        headers=surveys.auth("tom"),
    )

    assert sent.status == 201 and (await sent.json())["trigger"] == "manual"
    assert again.status == 409 and (await again.json())["error"]["fields"] == {
        "survey": "recently_surveyed"
    }
    assert forced_by_agent.status == 403 and forced.status == 201
    # Due at once, no delay: the app's sender, poked by the commit, delivers them.
    await _until(lambda: len(surveys.mail.received) == 2)


async def test_an_opt_out_set_by_an_agent_stops_surveys(surveys: SurveyDesk) -> None:
    url = f"/api/v1/surveys/opt-outs/{surveys.people.customer}"
    put = await surveys.client.put(url, headers=surveys.auth("alice"))
    ticket_id = await surveys.open_ticket()

    sent = await surveys.client.post(
        "/api/v1/surveys", json={"ticket_id": ticket_id}, headers=surveys.auth("alice")
    )
    cleared = await surveys.client.delete(url, headers=surveys.auth("alice"))
    after = await surveys.client.post(
        "/api/v1/surveys", json={"ticket_id": ticket_id}, headers=surveys.auth("alice")
    )

    assert put.status == 200 and (await put.json())["opted_out"] is True
    assert sent.status == 409 and (await sent.json())["error"]["fields"]["survey"] == "opted_out"
    assert cleared.status == 200 and after.status == 201


async def test_the_openapi_document_lists_the_survey_endpoints(surveys: SurveyDesk) -> None:
    document = await (await surveys.client.get("/api/v1/openapi.json")).json()
    paths = document["paths"]
    for path in (
        "/api/v1/surveys",
        "/api/v1/surveys/{id}",
        "/api/v1/surveys/templates",
        "/api/v1/surveys/templates/{id}",
        "/api/v1/surveys/reports",
        "/api/v1/surveys/answers.csv",
        "/api/v1/surveys/follow-ups",
        "/api/v1/surveys/follow-ups/{id}/acknowledge",
        "/api/v1/surveys/opt-outs/{customer_id}",
    ):
        assert path in paths, path
    assert "SurveyReportOut" in document["components"]["schemas"]


async def test_reports_group_by_day_week_and_month_of_sending(surveys: SurveyDesk) -> None:
    start = surveys.clock.now()  # Monday 2026-01-05
    for n in range(3):
        customer = await _customer(surveys, f"D{n}", f"d{n}@example.org")
        await surveys.solved_ticket(customer_id=customer)
        await _answer(surveys, csat=str(3 + n))
        surveys.clock.advance(timedelta(days=4))
        await surveys.sign_in_again()
    window = {"from": start.isoformat(), "to": (start + timedelta(days=30)).isoformat()}

    by = {}
    for period in ("day", "week", "month"):
        response = await surveys.client.get(
            "/api/v1/surveys/reports", params={**window, "by": period}, headers=surveys.auth("tom")
        )
        by[period] = {
            g["key"]: g["scores"]["csat_average"] for g in (await response.json())["groups"]
        }

    assert by["day"] == {"2026-01-05": 3.0, "2026-01-09": 4.0, "2026-01-13": 5.0}
    assert by["week"] == {"2026-W02": 3.5, "2026-W03": 5.0}
    assert by["month"] == {"2026-01": 4.0}

"""The wallboard's survey panels: the low scores waiting for someone, and CSAT today."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from desk.clock import FakeClock
from tests.conftest import Database
from tests.desk.mail_support import MailServer
from tests.web.survey_support import SurveyDesk, mail_server, start_survey_desk, surveys

__all__ = ["mail_server", "surveys"]


@pytest.fixture
async def surveys_every_time(
    database: Database, clock: FakeClock, mail_server: MailServer
) -> AsyncIterator[SurveyDesk]:
    """No fatigue period: each solved ticket of the one customer gets its survey."""
    desk = await start_survey_desk(database, clock, mail_server, surveys_period_days=0)
    yield desk
    await desk.client.close()


async def _answer(desk: SurveyDesk, **fields: str) -> None:
    await desk.solved_ticket()
    token = await desk.token()
    response = await desk.client.post(f"/s/{token}", data=fields, allow_redirects=False)
    assert response.status == 303, await response.text()


async def _wallboard(desk: SurveyDesk) -> str:
    response = await desk.client.get("/wallboard", headers=desk.auth("tom"))
    assert response.status == 200
    return await response.text()


async def _day(desk: SurveyDesk) -> dict[str, object]:
    response = await desk.client.get("/wallboard/day", headers=desk.auth("tom"))
    assert response.status == 200
    body: dict[str, object] = await response.json()
    return body


async def test_an_open_low_score_is_on_the_wallboard_with_the_customers_words_as_text(
    surveys: SurveyDesk,
) -> None:
    await _answer(surveys, csat="1", comment="<b>Nobody</b> called back")

    page = await _wallboard(surveys)

    assert "Erika Mustermann" in page and "CSAT 1/5" in page
    assert "&lt;b&gt;Nobody&lt;/b&gt; called back" in page and "<b>Nobody</b>" not in page
    assert 'class="ack"' in page  # acknowledged from the wall, with a note


async def test_an_acknowledged_low_score_leaves_the_wallboard(surveys: SurveyDesk) -> None:
    await _answer(surveys, csat="1", comment="Nobody called back")
    [item] = (
        await (
            await surveys.client.get("/api/v1/surveys/follow-ups", headers=surveys.auth("tom"))
        ).json()
    )["items"]
    response = await surveys.client.post(
        f"/api/v1/surveys/follow-ups/{item['id']}/acknowledge",
        json={"note": "Called her back"},
        headers=surveys.auth("tom"),
    )
    assert response.status == 200

    page = await _wallboard(surveys)

    assert "Nobody called back" not in page and "No low score is waiting." in page


async def test_csat_today_counts_the_answers_given_today_with_its_denominator(
    surveys_every_time: SurveyDesk,
) -> None:
    surveys = surveys_every_time
    await _answer(surveys, csat="5")
    await _answer(surveys, csat="2")

    assert (await _day(surveys))["csat"] == {
        "answers": 2,
        "satisfied": 1,
        "percent": 50.0,
        "average": 3.5,
        "nps": None,
        "nps_answers": 0,
    }
    assert "1 satisfied, of 2 answers" in await _wallboard(surveys)


async def test_yesterdays_answers_are_not_in_csat_today(surveys: SurveyDesk) -> None:
    await _answer(surveys, csat="5")
    surveys.clock.advance(timedelta(days=1))
    await surveys.sign_in_again()

    assert (await _day(surveys))["csat"]["answers"] == 0  # type: ignore[index]
    assert "No survey answered today yet." in await _wallboard(surveys)

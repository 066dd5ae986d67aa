"""The survey page: one tap from the e-mail records the score, the optional
questions follow, one survey takes one answer (editable for a while), and bad
tokens or bad input get a friendly page and change nothing."""

from __future__ import annotations

import asyncio
import html
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from desk.models import Customer, Survey, TimelineEntry
from desk.survey_tokens import TokenKey, make_token
from tests.conftest import TEST_SECRET
from tests.desk.survey_support import LINK
from tests.web.survey_support import SurveyDesk, mail_server, surveys

__all__ = ["mail_server", "surveys"]


async def _answered(desk: SurveyDesk) -> int:
    async with desk.database.sessions() as session:
        return int(
            await session.scalar(select(func.count()).where(Survey.answered_at.is_not(None))) or 0
        )


async def _timeline_entries(desk: SurveyDesk) -> int:
    async with desk.database.sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(TimelineEntry)
                .where(TimelineEntry.kind == "survey")
            )
            or 0
        )


async def _post(desk: SurveyDesk, token: str, **fields: str) -> Any:
    return await desk.client.post(f"/s/{token}", data=fields, allow_redirects=False)


async def test_clicking_a_face_in_the_delivered_email_records_the_score_and_offers_more(
    surveys: SurveyDesk,
) -> None:
    ticket_id = await surveys.solved_ticket()
    surveys.clock.advance(timedelta(minutes=30))
    await surveys.send_due()
    [mail] = surveys.mail.received
    text = mail.message.get_body(("plain",))
    assert text is not None
    four = re.search(LINK.pattern + r"\?csat=4", text.get_content())
    assert four is not None

    response = await surveys.client.get(four.group(0).removeprefix("https://desk.example.com"))

    assert response.status == 200
    page = await response.text()
    assert 'id="recorded"' in page and 'name="nps"' in page and 'name="comment"' in page
    assert re.search(r'name="csat" value="4"\s+checked', page)
    survey = await surveys.survey()
    assert (survey.ticket_id, survey.csat, survey.answered_at) == (
        ticket_id,
        4,
        surveys.clock.now(),
    )


async def test_the_optional_questions_are_recorded_with_the_score(surveys: SurveyDesk) -> None:
    await surveys.solved_ticket()
    token = await surveys.token()
    await surveys.client.get(f"/s/{token}?csat=5")

    response = await _post(
        surveys, token, csat="5", nps="9", comment="Quick and kind.", may_contact="yes"
    )

    assert response.status == 303 and response.headers["Location"].startswith(f"/s/{token}/thanks")
    survey = await surveys.survey()
    assert (survey.csat, survey.nps, survey.comment, survey.may_contact) == (
        5,
        9,
        "Quick and kind.",
        True,
    )
    thanks = await surveys.client.get(response.headers["Location"])
    assert thanks.status == 200 and "Thank you!" in await thanks.text()


async def test_a_second_submit_within_the_edit_window_changes_the_one_answer(
    surveys: SurveyDesk,
) -> None:
    await surveys.solved_ticket()
    token = await surveys.token()
    await _post(surveys, token, csat="3")
    surveys.clock.advance(timedelta(minutes=29))

    response = await _post(surveys, token, csat="4", comment="Better on second thought")

    assert response.status == 303
    survey = await surveys.survey()
    assert (survey.csat, survey.comment) == (4, "Better on second thought")
    assert survey.changed_at == surveys.clock.now()
    assert await _answered(surveys) == 1 and await _timeline_entries(surveys) == 1


async def test_opening_an_answered_survey_shows_the_recorded_answer(surveys: SurveyDesk) -> None:
    await surveys.solved_ticket()
    token = await surveys.token()
    await _post(surveys, token, csat="4", nps="8")

    page = await (await surveys.client.get(f"/s/{token}")).text()

    assert re.search(r'name="csat" value="4"\s+checked', page)
    assert re.search(r'name="nps" value="8"\s+checked', page)
    assert 'id="editable-until"' in page


async def test_after_the_edit_window_the_answer_is_final_and_a_replayed_submit_changes_nothing(
    surveys: SurveyDesk,
) -> None:
    await surveys.solved_ticket()
    token = await surveys.token()
    await _post(surveys, token, csat="2", comment="slow")
    surveys.clock.advance(timedelta(minutes=31))

    replay = await _post(surveys, token, csat="5", comment="slow")
    click = await surveys.client.get(f"/s/{token}?csat=5")

    assert replay.status == 409 and click.status == 409
    page = await (await surveys.client.get(f"/s/{token}")).text()
    assert 'id="answer"' in page and "<form" not in page
    survey = await surveys.survey()
    assert (survey.csat, survey.changed_at) == (2, surveys.clock.now() - timedelta(minutes=31))


def _forged(token: str) -> str:
    return token[:10] + ("A" if token[10] != "A" else "B") + token[11:]


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(_forged, id="forged"),
        pytest.param(lambda token: token[:-3], id="truncated"),
        pytest.param(lambda token: token + "x", id="lengthened"),
        pytest.param(lambda token: "not-a-token", id="garbage"),
        pytest.param(lambda token: "%3Cscript%3E", id="markup"),
    ],
)
async def test_a_bad_token_gets_a_friendly_page_and_nothing_is_written(
    surveys: SurveyDesk, spoil: Any
) -> None:
    await surveys.solved_ticket()
    bad = spoil(await surveys.token())

    shown = await surveys.client.get(f"/s/{bad}")
    clicked = await surveys.client.get(f"/s/{bad}?csat=5")
    posted = await _post(surveys, bad, csat="5")

    for response in (shown, clicked, posted):
        assert response.status == 404
        page = await response.text()
        assert "This survey link does not work" in page and "Traceback" not in page
    assert await _answered(surveys) == 0 and await _timeline_entries(surveys) == 0


async def test_an_expired_token_gets_a_friendly_page_and_nothing_is_written(
    surveys: SurveyDesk,
) -> None:
    await surveys.solved_ticket()
    token = await surveys.token()
    surveys.clock.advance(timedelta(days=14, minutes=30))

    response = await surveys.client.get(f"/s/{token}?csat=5")

    assert response.status == 410 and "expired" in await response.text()
    assert await _answered(surveys) == 0


async def test_a_token_signed_for_another_survey_answers_only_that_one(
    surveys: SurveyDesk,
) -> None:
    await surveys.solved_ticket()
    survey = await surveys.survey()
    key = TokenKey.from_secret(TEST_SECRET)
    other = make_token(
        key,
        survey_id=survey.id + 1,
        expires_at=survey.expires_at,
        questions_id=survey.template_version_id,
    )

    response = await surveys.client.get(f"/s/{other}?csat=1")

    assert response.status == 404  # signed by us, but no such survey: nothing to answer
    assert await _answered(surveys) == 0


@pytest.mark.parametrize("score", ["0", "6", "-1", "4.5", "five", "99999999999"])
async def test_an_out_of_range_score_from_a_link_is_refused(
    surveys: SurveyDesk, score: str
) -> None:
    await surveys.solved_ticket()
    token = await surveys.token()

    response = await surveys.client.get(f"/s/{token}", params={"csat": score})

    assert response.status == 422 and 'id="csat-problem"' in await response.text()
    assert await _answered(surveys) == 0


async def test_an_out_of_range_score_in_the_form_is_refused_and_the_answers_are_kept(
    surveys: SurveyDesk,
) -> None:
    await surveys.solved_ticket()
    token = await surveys.token()

    response = await _post(surveys, token, csat="5", nps="42", comment="keep me")

    assert response.status == 422
    page = await response.text()
    assert 'id="nps-problem"' in page and "keep me" in page
    assert await _answered(surveys) == 0


async def test_an_oversized_comment_is_refused_and_nothing_is_written(
    surveys: SurveyDesk,
) -> None:
    await surveys.solved_ticket()
    token = await surveys.token()

    response = await _post(surveys, token, csat="3", comment="x" * 2001)

    assert response.status == 422 and "at most 2000 characters" in await response.text()
    assert await _answered(surveys) == 0


async def test_html_in_a_comment_is_stored_as_text_and_shown_escaped(surveys: SurveyDesk) -> None:
    await surveys.solved_ticket()
    token = await surveys.token()
    comment = '<script>alert("x")</script><img src=x onerror=alert(1)>'

    await _post(surveys, token, csat="4", comment=comment)

    assert (await surveys.survey()).comment == comment
    page = await (await surveys.client.get(f"/s/{token}")).text()
    assert "<script>" not in page and "<img" not in page
    assert html.escape(comment, quote=False).replace('"', "&#34;") in page


async def test_rapid_repeated_submits_record_one_answer(surveys: SurveyDesk) -> None:
    await surveys.solved_ticket()
    token = await surveys.token()

    responses = await asyncio.gather(
        *(_post(surveys, token, csat=str(1 + n % 5)) for n in range(20)),
        *(surveys.client.get(f"/s/{token}?csat=3") for _ in range(10)),
    )

    assert {response.status for response in responses} <= {200, 303}
    assert await _answered(surveys) == 1 and await _timeline_entries(surveys) == 1


async def test_a_head_request_to_a_face_link_records_nothing(surveys: SurveyDesk) -> None:
    await surveys.solved_ticket()
    token = await surveys.token()

    response = await surveys.client.head(f"/s/{token}?csat=1")

    assert response.status == 200 and await _answered(surveys) == 0


async def test_the_page_speaks_the_customers_language_before_the_browsers(
    surveys: SurveyDesk,
) -> None:
    async with surveys.database.sessions() as session:
        customer = await session.get(Customer, surveys.people.customer)
        assert customer is not None
        customer.language = "zh"
        await session.commit()
    await surveys.solved_ticket()
    token = await surveys.token()

    page = await (
        await surveys.client.get(f"/s/{token}", headers={"Accept-Language": "en-GB"})
    ).text()
    english = await (await surveys.client.get(f"/s/{token}?lang=en")).text()

    assert 'lang="zh"' in page and "我们的服务如何" in page
    assert 'lang="en"' in english and "How did we do?" in english


async def test_a_bad_link_page_follows_the_browsers_language(surveys: SurveyDesk) -> None:
    response = await surveys.client.get("/s/nonsense", headers={"Accept-Language": "zh-CN"})

    assert response.status == 404 and "此问卷链接无法使用" in await response.text()


async def test_the_page_works_without_javascript_and_keeps_its_token_private(
    surveys: SurveyDesk,
) -> None:
    await surveys.solved_ticket()
    token = await surveys.token()

    response = await surveys.client.get(f"/s/{token}")

    page = await response.text()
    assert "<script" not in page and '<form method="post"' in page
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_a_survey_withdrawn_because_the_ticket_reopened_says_so(
    surveys: SurveyDesk,
) -> None:
    ticket_id = await surveys.solved_ticket()
    token = await surveys.token()
    await surveys.set_status(ticket_id, "open")

    response = await surveys.client.get(f"/s/{token}?csat=5")

    assert response.status == 410 and "no longer needed" in await response.text()
    assert await _answered(surveys) == 0


async def test_opting_out_from_the_link_stops_future_surveys(surveys: SurveyDesk) -> None:
    await surveys.solved_ticket()
    token = await surveys.token()

    confirm = await surveys.client.get(f"/s/{token}/opt-out")
    done = await surveys.client.post(f"/s/{token}/opt-out")
    surveys.clock.advance(timedelta(days=60))
    await surveys.sign_in_again()
    await surveys.solved_ticket()

    assert confirm.status == 200 and 'method="post"' in await confirm.text()
    assert done.status == 200 and 'id="opted-out"' in await done.text()
    async with surveys.database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Survey)) == 1


async def test_a_teams_own_questions_are_asked_and_kept_by_key(surveys: SurveyDesk) -> None:
    questions = [
        {"key": "ces", "kind": "ces", "required": True, "label": {"en": "How easy was it?"}},
        {"key": "first_time", "kind": "yes_no", "label": {"en": "Solved the first time?"}},
        {"key": "improve", "kind": "text", "label": {"en": "What should we improve?"}},
    ]
    created = await surveys.client.post(
        "/api/v1/surveys/templates",
        json={"name": "effort", "team_id": surveys.people.team, "questions": questions},
        headers=surveys.auth("tom"),
    )
    assert created.status == 201, await created.text()
    await surveys.solved_ticket()
    token = await surveys.token()

    page = await (await surveys.client.get(f"/s/{token}")).text()
    face = await surveys.client.get(f"/s/{token}?csat=5")  # no CSAT asked: opens only
    assert face.status == 200 and await _answered(surveys) == 0
    missing = await _post(surveys, token, first_time="yes")
    sent = await _post(surveys, token, ces="6", first_time="no", improve="Call back sooner")

    assert (
        "How easy was it?" in page and 'name="ces" value="7"' in page and 'name="csat"' not in page
    )
    assert missing.status == 422 and 'id="ces-problem"' in await missing.text()
    assert sent.status == 303
    survey = await surveys.survey()
    assert (survey.ces, survey.csat, survey.answers) == (
        6,
        None,
        {"first_time": False, "improve": "Call back sooner"},
    )

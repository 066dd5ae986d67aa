"""The survey page customers reach from the e-mail: no login, no JavaScript, one tap.

``/s/<token>`` shows the questions (or the recorded answer); ``?csat=<n>`` — the
e-mail's faces — records that score at once and offers the optional questions.
A POST records the whole answer and redirects to the thank-you page.  A bad
token (forged, truncated, expired) or a withdrawn survey gets a friendly page
and a 4xx, and nothing is written.  The language is ``?lang=``, else the
customer's, else the browser's.  The token is the only credential, so pages
are never cached and never leak it through the Referer header.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from desk.errors import NotFound
from desk.survey_answers import Outcome, SurveyFacts, SurveyGlance, SurveyState
from desk.survey_customers import opt_out as record_opt_out
from desk.survey_questions import (
    SCALES,
    Answer,
    AnswerRefused,
    QuestionKind,
    low_score_reasons,
    question_of,
    read_answer,
    read_score,
)
from desk.survey_tokens import BadToken, TokenProblem, read_token
from desk.survey_wording import FACES, LANGUAGES, survey_words
from web.pages.wording import language_of
from web.state import CLOCK, SESSIONS, SETTINGS, SURVEY_ANSWERS, SURVEY_TOKEN_KEY

_PRIVATE = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}


def _language(request: web.Request, facts: SurveyGlance | None) -> str:
    asked = request.query.get("lang", "")
    if asked in LANGUAGES:
        return asked
    if facts is not None and facts.language in LANGUAGES:
        return facts.language
    return language_of(request)


def _page(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    response.headers.update(_PRIVATE)
    return response


def _gone(request: web.Request, reason: str, status: int) -> web.Response:
    language = _language(request, None)
    context = {"t": survey_words(language), "lang": language, "reason": reason}
    return _page(request, "survey/gone.html", context, status=status)


def _now(request: web.Request) -> datetime:
    return request.app[CLOCK].now()


async def _facts(request: web.Request) -> SurveyFacts | web.Response:
    """The survey the token names, or the friendly refusal to send instead."""
    token = request.match_info["token"]
    try:
        survey_id = read_token(request.app[SURVEY_TOKEN_KEY], token, now=_now(request)).survey_id
    except BadToken as bad:
        if bad.problem is TokenProblem.EXPIRED:
            return _gone(request, "gone_expired", 410)
        return _gone(request, "gone_invalid", 404)
    try:
        facts = await request.app[SURVEY_ANSWERS].facts(survey_id, now=_now(request))
    except NotFound:  # signed by us, but the survey is gone (its customer was deleted)
        return _gone(request, "gone_invalid", 404)
    if facts.state is SurveyState.WITHDRAWN:
        return _gone(request, "gone_withdrawn", 410)
    if facts.state is SurveyState.EXPIRED:
        return _gone(request, "gone_expired", 410)
    return facts


def _form_values(answer: Answer, facts: SurveyFacts) -> dict[str, str]:
    values: dict[str, str] = {}
    for question in facts.questions:
        if question.kind in SCALES:
            value: object = getattr(answer, question.kind.value)
        elif question.key == "comment":
            value = answer.comment
        elif question.key == "may_contact":
            value = answer.may_contact
        else:
            value = answer.others.get(question.key)
        if isinstance(value, bool):
            values[question.key] = "yes" if value else "no"
        elif value is not None:
            values[question.key] = str(value)
    return values


def _render(
    request: web.Request,
    facts: SurveyFacts,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    just_recorded: bool = False,
    status: int = 200,
) -> web.Response:
    language = _language(request, facts)
    t = survey_words(language)
    settings = request.app[SETTINGS]
    context = {
        "t": t,
        "lang": language,
        "facts": facts,
        "questions": [
            {
                "key": q.key,
                "kind": q.kind.value,
                "required": q.required,
                "text": q.text(language),
                "scale": list(range(SCALES[q.kind][0], SCALES[q.kind][1] + 1))
                if q.kind in SCALES
                else [],
            }
            for q in facts.questions
        ],
        "faces": FACES,
        "values": values if values is not None else _form_values(facts.answer, facts),
        "errors": errors or {},
        "just_recorded": just_recorded,
        "editable": facts.state in (SurveyState.OPEN, SurveyState.ANSWERED),
        "text_limit": settings.surveys_comment_max,
        "action": f"/s/{request.match_info['token']}?lang={language}",
        "editable_until": facts.editable_until.strftime("%Y-%m-%d %H:%M UTC")
        if facts.editable_until
        else "",
        "call_date": facts.call_at.strftime("%Y-%m-%d") if facts.call_at else "",
    }
    return _page(request, "survey/form.html", context, status=status)


async def show(request: web.Request) -> web.Response:
    found = await _facts(request)
    if isinstance(found, web.Response):
        return found
    facts = found
    raw = request.query.get("csat")
    asked = question_of(facts.questions, QuestionKind.CSAT)
    # HEAD (link checkers, previews) never records; only a real visit does.  A face
    # link for a survey that does not ask CSAT just opens it.
    if raw is None or request.method != "GET" or asked is None:
        return _render(request, facts)
    t = survey_words(_language(request, facts))
    try:
        score = read_score(QuestionKind.CSAT, raw)
    except ValueError:
        return _render(request, facts, errors={asked.key: t["bad_value"]}, status=422)
    if facts.state is SurveyState.FINAL:
        return _render(request, facts, errors={"form": t["too_late"]}, status=409)
    recorded = await request.app[SURVEY_ANSWERS].record(
        facts.id, Answer(csat=score), now=_now(request), only_csat=True
    )
    if recorded.outcome not in (Outcome.RECORDED, Outcome.CHANGED):
        return await _refused(request, recorded.outcome)
    facts = await request.app[SURVEY_ANSWERS].facts(facts.id, now=_now(request))
    return _render(request, facts, just_recorded=True)


async def submit(request: web.Request) -> web.StreamResponse:
    """The answer path: the token (which also names the survey's questions), the
    form checked, then the answer joins the next group commit, where one UPDATE
    decides whether it may still be given.  A refused form is rendered in full."""
    token = request.match_info["token"]
    answers = request.app[SURVEY_ANSWERS]
    try:
        claims = read_token(request.app[SURVEY_TOKEN_KEY], token, now=_now(request))
        questions = await answers.questions(claims.questions_id)
    except BadToken as bad:
        if bad.problem is TokenProblem.EXPIRED:
            return _gone(request, "gone_expired", 410)
        return _gone(request, "gone_invalid", 404)
    except NotFound:
        return _gone(request, "gone_invalid", 404)
    form = await request.post()
    values = {q.key: str(form.get(q.key, "")) for q in questions}
    limit = request.app[SETTINGS].surveys_comment_max
    try:
        answer = read_answer(questions, values, text_limit=limit)
    except AnswerRefused as refused:
        found = await _facts(request)
        if isinstance(found, web.Response):
            return found
        t = survey_words(_language(request, found))
        errors = {key: _problem_text(why, t, limit) for key, why in refused.problems.items()}
        return _render(request, found, values=values, errors=errors, status=422)
    recorded = await answers.record(claims.survey_id, answer, now=_now(request))
    if recorded.outcome not in (Outcome.RECORDED, Outcome.CHANGED):
        return await _refused(request, recorded.outcome)
    asked = request.query.get("lang", "")
    lang = f"?lang={asked}" if asked in LANGUAGES else ""
    raise web.HTTPSeeOther(f"/s/{token}/thanks{lang}")


async def _refused(request: web.Request, outcome: Outcome) -> web.Response:
    if outcome is Outcome.MISSING:
        return _gone(request, "gone_invalid", 404)
    if outcome is Outcome.WITHDRAWN:
        return _gone(request, "gone_withdrawn", 410)
    if outcome is Outcome.EXPIRED:
        return _gone(request, "gone_expired", 410)
    found = await _facts(request)
    if isinstance(found, web.Response):
        return found
    t = survey_words(_language(request, found))
    return _render(request, found, errors={"form": t["too_late"]}, status=409)


def _problem_text(why: str, t: dict[str, str], limit: int) -> str:
    if why == "required":
        return t["bad_required"]
    if why.startswith("at most"):
        return t["bad_long"].format(limit=limit)
    return t["bad_value"]


async def thanks(request: web.Request) -> web.Response:
    found = await _facts(request)
    if isinstance(found, web.Response):
        return found
    language = _language(request, found)
    rule = request.app[SURVEY_ANSWERS].rule
    context = {
        "t": survey_words(language),
        "lang": language,
        "low": bool(low_score_reasons(found.answer, rule)),
        "back": f"/s/{request.match_info['token']}?lang={language}",
    }
    return _page(request, "survey/thanks.html", context)


async def _customer_of(request: web.Request) -> int | web.Response:
    # Opting out stays possible after the survey expired or was withdrawn: a
    # customer who asks is always heard, so only the signature counts here.
    try:
        survey_id = read_token(
            request.app[SURVEY_TOKEN_KEY],
            request.match_info["token"],
            now=_now(request),
            allow_expired=True,
        ).survey_id
        facts = await request.app[SURVEY_ANSWERS].facts(survey_id, now=_now(request))
    except (BadToken, NotFound):
        return _gone(request, "gone_invalid", 404)
    return facts.customer_id


def _opt_out_page(request: web.Request, *, done: bool) -> web.Response:
    language = _language(request, None)
    context = {
        "t": survey_words(language),
        "lang": language,
        "done": done,
        "action": f"/s/{request.match_info['token']}/opt-out?lang={language}",
    }
    return _page(request, "survey/opt_out.html", context)


async def opt_out_form(request: web.Request) -> web.Response:
    """A confirmation button, not a change: link scanners follow GET links."""
    found = await _customer_of(request)
    if isinstance(found, web.Response):
        return found
    return _opt_out_page(request, done=False)


async def opt_out(request: web.Request) -> web.StreamResponse:
    found = await _customer_of(request)
    if isinstance(found, web.Response):
        return found
    async with request.app[SESSIONS]() as session, session.begin():
        await record_opt_out(session, found, source="survey link", now=_now(request))
    return _opt_out_page(request, done=True)


ROUTES = [
    web.get("/s/{token}", show),
    web.post("/s/{token}", submit),
    web.get("/s/{token}/thanks", thanks),
    web.get("/s/{token}/opt-out", opt_out_form),
    web.post("/s/{token}/opt-out", opt_out),
]

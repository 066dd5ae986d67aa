"""The pure rules of surveys, table by table: tokens, reading answers, low scores,
whom to survey, report arithmetic, CSV cells, the e-mail, template fit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from desk.models import SurveyTemplate
from desk.survey_mail import MailFacts, survey_mail
from desk.survey_policy import Recipient, Skip, TriggerPolicy, decide
from desk.survey_questions import (
    DEFAULT_QUESTIONS,
    Answer,
    AnswerRefused,
    LowScoreRule,
    Question,
    QuestionKind,
    QuestionList,
    clean_text,
    low_score_reasons,
    read_answer,
)
from desk.survey_reports import ScoreRow, SurveyDimension, csv_cell, period_key, scores
from desk.survey_templates import specificity
from desk.survey_tokens import (
    TOKEN_CHARS,
    BadToken,
    TokenClaims,
    TokenKey,
    TokenProblem,
    make_token,
    read_token,
)

NOW = datetime(2026, 1, 5, 9, tzinfo=UTC)
KEY = TokenKey.from_secret("s" * 40)
TOKEN = make_token(KEY, survey_id=42, expires_at=NOW + timedelta(days=14), questions_id=7)


# --- tokens ------------------------------------------------------------------------------


def test_a_token_names_its_survey_until_it_expires() -> None:
    assert len(TOKEN) == TOKEN_CHARS
    assert read_token(KEY, TOKEN, now=NOW) == TokenClaims(survey_id=42, questions_id=7)
    assert read_token(KEY, TOKEN, now=NOW + timedelta(days=14, seconds=-1)).survey_id == 42


def _flip(token: str, at: int) -> str:
    swapped = "A" if token[at] != "A" else "B"
    return token[:at] + swapped + token[at + 1 :]


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        (TOKEN[:-1], TokenProblem.MALFORMED),  # truncated
        (TOKEN + "A", TokenProblem.MALFORMED),
        ("", TokenProblem.MALFORMED),
        (TOKEN[:-2] + "!!", TokenProblem.MALFORMED),
        (TOKEN[:-1] + "é", TokenProblem.MALFORMED),
        (_flip(TOKEN, 5), TokenProblem.FORGED),  # another survey id, same signature
        (_flip(TOKEN, 20), TokenProblem.FORGED),  # another template version
        (_flip(TOKEN, 35), TokenProblem.FORGED),  # the signature changed
        (
            make_token(
                TokenKey.from_secret("x" * 40),
                survey_id=42,
                expires_at=NOW + timedelta(1),
                questions_id=7,
            ),
            TokenProblem.FORGED,
        ),
    ],
)
def test_a_truncated_changed_or_foreign_token_is_refused(token: str, problem: TokenProblem) -> None:
    with pytest.raises(BadToken) as refused:
        read_token(KEY, token, now=NOW)
    assert refused.value.problem is problem


def test_an_expired_token_is_refused_but_still_proves_its_survey_for_opting_out() -> None:
    later = NOW + timedelta(days=14)
    with pytest.raises(BadToken) as refused:
        read_token(KEY, TOKEN, now=later)
    assert refused.value.problem is TokenProblem.EXPIRED
    assert read_token(KEY, TOKEN, now=later, allow_expired=True).survey_id == 42


def test_tokens_of_two_surveys_differ_and_do_not_name_each_other() -> None:
    other = make_token(KEY, survey_id=43, expires_at=NOW + timedelta(days=14), questions_id=7)
    assert other != TOKEN and read_token(KEY, other, now=NOW).survey_id == 43


# --- reading answers ---------------------------------------------------------------------

Q = DEFAULT_QUESTIONS


@pytest.mark.parametrize(
    ("form", "answer"),
    [
        ({"csat": "5"}, Answer(csat=5)),
        ({"csat": "1", "nps": "0"}, Answer(csat=1, nps=0)),
        (
            {"csat": " 4 ", "nps": "10", "may_contact": "yes"},
            Answer(csat=4, nps=10, may_contact=True),
        ),
        (
            {"csat": "3", "comment": "  fine\r\nthanks \x00\u202e "},
            Answer(csat=3, comment="fine\nthanks"),
        ),
        ({"csat": "3", "comment": "   "}, Answer(csat=3)),
        ({"csat": "2", "unknown": "x"}, Answer(csat=2)),
        (
            {"csat": "4", "comment": "<script>alert(1)</script>"},
            Answer(csat=4, comment="<script>alert(1)</script>"),
        ),
    ],
)
def test_a_valid_form_becomes_an_answer(form: dict[str, str], answer: Answer) -> None:
    assert read_answer(Q, form, text_limit=2000) == answer


@pytest.mark.parametrize(
    ("form", "problems"),
    [
        ({}, {"csat": "required"}),
        ({"csat": "0"}, {"csat": "choose a whole number from 1 to 5"}),
        ({"csat": "6"}, {"csat": "choose a whole number from 1 to 5"}),
        ({"csat": "-1"}, {"csat": "choose a whole number from 1 to 5"}),
        ({"csat": "4.0"}, {"csat": "choose a whole number from 1 to 5"}),
        ({"csat": "٣"}, {"csat": "choose a whole number from 1 to 5"}),
        ({"csat": "99999999999999999999"}, {"csat": "choose a whole number from 1 to 5"}),
        ({"csat": "5", "nps": "11"}, {"nps": "choose a whole number from 0 to 10"}),
        ({"csat": "5", "may_contact": "maybe"}, {"may_contact": "answer yes or no"}),
        ({"csat": "5", "comment": "x" * 2001}, {"comment": "at most 2000 characters"}),
    ],
)
def test_an_out_of_range_or_oversized_answer_is_refused(
    form: dict[str, str], problems: dict[str, str]
) -> None:
    with pytest.raises(AnswerRefused) as refused:
        read_answer(Q, form, text_limit=2000)
    assert refused.value.problems == problems


def test_other_questions_are_kept_by_key() -> None:
    questions = (
        Question(key="csat", kind=QuestionKind.CSAT, label={"en": "?"}),
        Question(key="solved_first_time", kind=QuestionKind.YES_NO, label={"en": "?"}),
        Question(key="what_to_improve", kind=QuestionKind.TEXT, label={"en": "?"}),
    )
    answer = read_answer(
        questions, {"solved_first_time": "no", "what_to_improve": "speed"}, text_limit=100
    )
    assert answer.others == {"solved_first_time": False, "what_to_improve": "speed"}


def test_clean_text_keeps_line_breaks_and_drops_control_characters() -> None:
    assert clean_text("a\tb\r\nc\x07\x1b[31m\u200bd") == "a\tb\nc[31md"


@pytest.mark.parametrize(
    "questions",
    [
        [{"key": "csat", "kind": "csat", "label": {"en": "a"}}] * 2,
        [
            {"key": "a", "kind": "nps", "label": {"en": "a"}},
            {"key": "b", "kind": "nps", "label": {"en": "b"}},
        ],
        [{"key": "csat", "kind": "csat", "label": {"zh": "满意吗"}}],
        [{"key": "Bad Key", "kind": "text", "label": {"en": "a"}}],
        [{"key": "may_contact", "kind": "text", "label": {"en": "a"}}],
        [{"key": "x", "kind": "stars", "label": {"en": "a"}}],
        [],
    ],
)
def test_a_malformed_template_is_refused(questions: list[dict[str, object]]) -> None:
    with pytest.raises(ValidationError):
        QuestionList.model_validate({"questions": questions})


# --- low scores --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "rule", "reasons"),
    [
        (Answer(csat=2), LowScoreRule(), ["CSAT 2 ≤ 2"]),
        (Answer(csat=3), LowScoreRule(), []),
        (Answer(csat=5, nps=6), LowScoreRule(), ["NPS 6 ≤ 6"]),
        (Answer(csat=1, nps=0), LowScoreRule(), ["CSAT 1 ≤ 2", "NPS 0 ≤ 6"]),
        (Answer(csat=1), LowScoreRule(csat_at_most=None), []),
        (Answer(ces=2), LowScoreRule(ces_at_most=3), ["CES 2 ≤ 3"]),
        (Answer(), LowScoreRule(), []),
    ],
)
def test_a_score_at_or_under_the_threshold_is_low(
    answer: Answer, rule: LowScoreRule, reasons: list[str]
) -> None:
    assert low_score_reasons(answer, rule) == reasons


# --- whom to survey ----------------------------------------------------------------------

ON = TriggerPolicy(enabled=True, delay=timedelta(minutes=30), channels=("email",))
EMAIL = frozenset({"email"})
MONTH = timedelta(days=30)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, Recipient(channel="email", address="a@example.org")),
        (
            {"trigger": TriggerPolicy(enabled=False, delay=timedelta(0), channels=("email",))},
            Skip.TRIGGER_OFF,
        ),
        ({"opted_out": True}, Skip.OPTED_OUT),
        ({"excluded": True}, Skip.EXCLUDED_TICKET),
        ({"last_survey_at": NOW - timedelta(days=29)}, Skip.RECENTLY_SURVEYED),
        ({"last_survey_at": NOW - MONTH}, Recipient(channel="email", address="a@example.org")),
        (
            {"last_survey_at": NOW - timedelta(days=1), "ignore_period": True},
            Recipient(channel="email", address="a@example.org"),
        ),
        ({"emails": ()}, Skip.UNREACHABLE),
        ({"available": frozenset()}, Skip.UNREACHABLE),  # e-mail is not configured
    ],
)
def test_decide_whom_to_survey(changes: dict[str, object], expected: Recipient | Skip) -> None:
    values: dict[str, object] = {
        "trigger": ON,
        "available": EMAIL,
        "opted_out": False,
        "last_survey_at": None,
        "period": MONTH,
        "excluded": False,
        "emails": ("a@example.org", "b@example.org"),
        "now": NOW,
        **changes,
    }
    assert decide(**values) == expected  # type: ignore[arg-type]


# --- report arithmetic -------------------------------------------------------------------


def test_csat_percent_counts_fours_and_fives_of_all_csat_answers() -> None:
    rows = [ScoreRow(sent=True, answered=True, csat=c) for c in (5, 4, 3, 1)]
    rows.append(ScoreRow(sent=True, answered=False))
    result = scores(rows)
    assert (result.sent, result.answered, result.response_rate) == (5, 4, 80.0)
    assert (result.csat_answers, result.csat_percent, result.csat_average) == (4, 50.0, 3.25)


def test_nps_is_promoters_minus_detractors() -> None:
    rows = [ScoreRow(sent=True, answered=True, nps=n) for n in (10, 9, 9, 8, 7, 6, 0, 3, 10, 10)]
    result = scores(rows)
    assert (result.promoters, result.passives, result.detractors) == (5, 2, 3)
    assert result.nps == 20.0


def test_an_empty_group_has_no_percentages() -> None:
    result = scores([])
    assert (result.response_rate, result.csat_percent, result.nps, result.csat_average) == (
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("by", "key"),
    [
        (SurveyDimension.DAY, "2026-01-05"),
        (SurveyDimension.WEEK, "2026-W02"),
        (SurveyDimension.MONTH, "2026-01"),
    ],
)
def test_periods_are_named_by_day_iso_week_and_month(by: SurveyDimension, key: str) -> None:
    assert period_key(NOW, by) == key


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("fine", "fine"),
        (None, ""),
        (5, "5"),
    ],
)
def test_csv_cells_never_start_a_formula(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


# --- the e-mail --------------------------------------------------------------------------


def test_the_email_escapes_names_and_subjects_in_its_html() -> None:
    mail = survey_mail(
        MailFacts(
            language="en",
            customer_name="<b>Eve</b>",
            link="https://desk.example.com/s/abc",
            expires_at=NOW,
            ticket_id=7,
            ticket_subject='"><img src=x onerror=alert(1)>',
        )
    )
    assert "<img" not in mail.html and "<b>Eve" not in mail.html
    assert "&lt;b&gt;Eve&lt;/b&gt;" in mail.html
    assert mail.html.count('href="https://desk.example.com/s/abc?csat=') == 5


# --- which template fits -----------------------------------------------------------------


def _template(team_id: int | None, channel: str | None, active: bool = True) -> SurveyTemplate:
    return SurveyTemplate(name="t", team_id=team_id, channel=channel, active=active)


@pytest.mark.parametrize(
    ("template", "fit"),
    [
        (_template(None, None), 0),
        (_template(None, "email"), 1),
        (_template(3, None), 2),
        (_template(3, "email"), 3),
        (_template(4, None), None),
        (_template(None, "phone"), None),
        (_template(3, "email", active=False), None),
    ],
)
def test_the_most_specific_active_template_fits_best(
    template: SurveyTemplate, fit: int | None
) -> None:
    assert specificity(template, team_id=3, channel="email") == fit

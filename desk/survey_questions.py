# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""What a survey asks and how an answer is read: pure, table-tested.

A template is a list of questions.  Scores have fixed columns on the survey row
(CSAT 1-5, NPS 0-10, CES 1-7) so reports can aggregate them; the comment and
"may we contact you" have their own columns too; any other yes/no or free-text
question lands in ``answers`` under its key.  A form is read into an
``Answer`` in exactly one place (``read_answer``), which refuses what is out
of range and neutralises what is merely unusual (control characters).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator


class QuestionKind(StrEnum):
    CSAT = "csat"  # customer satisfaction, 1 (very unhappy) … 5 (very happy)
    NPS = "nps"  # net promoter: how likely to recommend, 0 … 10
    CES = "ces"  # customer effort: how easy was it, 1 (very hard) … 7 (very easy)
    YES_NO = "yes_no"
    TEXT = "text"


SCALES: dict[QuestionKind, tuple[int, int]] = {
    QuestionKind.CSAT: (1, 5),
    QuestionKind.NPS: (0, 10),
    QuestionKind.CES: (1, 7),
}
SCORE_KINDS = frozenset(SCALES)
# Keys whose answers have a column of their own (reports and the board read them).
COMMENT = "comment"
MAY_CONTACT = "may_contact"
TEXT_LIMIT = 10_000  # no template may allow a longer free-text answer

Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class Question(BaseModel):
    """One question of a template; ``label`` by language, English required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    kind: QuestionKind
    required: bool = False
    label: dict[Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")], Label]

    @model_validator(mode="after")
    def _english_label(self) -> Question:
        if "en" not in self.label:
            raise ValueError("every question needs an English label (label.en)")
        if self.key == MAY_CONTACT and self.kind is not QuestionKind.YES_NO:
            raise ValueError("the question 'may_contact' must be a yes_no question")
        if self.key == COMMENT and self.kind is not QuestionKind.TEXT:
            raise ValueError("the question 'comment' must be a text question")
        return self

    def text(self, language: str) -> str:
        return self.label.get(language) or self.label["en"]


class QuestionList(BaseModel):
    """A template's questions: 1 to 12, keys unique, each score kind at most once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    questions: Annotated[list[Question], Field(min_length=1, max_length=12)]

    @model_validator(mode="after")
    def _unique(self) -> QuestionList:
        keys = [q.key for q in self.questions]
        if len(set(keys)) != len(keys):
            raise ValueError("question keys must be unique")
        kinds = [q.kind for q in self.questions if q.kind in SCORE_KINDS]
        if len(set(kinds)) != len(kinds):
            raise ValueError("each of csat, nps and ces may be asked at most once")
        return self


DEFAULT_QUESTIONS: tuple[Question, ...] = (
    Question(
        key="csat",
        kind=QuestionKind.CSAT,
        required=True,
        label={"en": "How satisfied are you with our help?", "zh": "您对我们的帮助满意吗？"},
    ),
    Question(
        key="nps",
        kind=QuestionKind.NPS,
        label={
            "en": "How likely are you to recommend us to a friend or colleague?",
            "zh": "您有多大可能向朋友或同事推荐我们？",
        },
    ),
    Question(
        key=COMMENT,
        kind=QuestionKind.TEXT,
        label={"en": "Anything you would like to tell us?", "zh": "还有什么想告诉我们的吗？"},
    ),
    Question(
        key=MAY_CONTACT,
        kind=QuestionKind.YES_NO,
        label={"en": "May we contact you about your answer?", "zh": "我们可以就您的回答联系您吗？"},
    ),
)


def questions_from_json(raw: list[dict[str, Any]]) -> tuple[Question, ...]:
    """A stored template version's questions (validated when they were saved)."""
    return tuple(QuestionList.model_validate({"questions": raw}).questions)


def question_of(questions: tuple[Question, ...], kind: QuestionKind) -> Question | None:
    return next((q for q in questions if q.kind is kind), None)


@dataclass(frozen=True, kw_only=True)
class Answer:
    """An answer as recorded: every field optional except what the template requires."""

    csat: int | None = None
    nps: int | None = None
    ces: int | None = None
    comment: str | None = None
    may_contact: bool | None = None
    others: dict[str, Any] = field(default_factory=dict)

    def columns(self) -> dict[str, Any]:
        return {
            "csat": self.csat,
            "nps": self.nps,
            "ces": self.ces,
            "comment": self.comment,
            "may_contact": self.may_contact,
            "answers": dict(self.others),
        }


class AnswerRefused(ValueError):
    """The form cannot be recorded; ``problems`` by question key (for the page)."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{key}: {why}" for key, why in problems.items()))
        self.problems = problems


def read_score(kind: QuestionKind, raw: str) -> int:
    """A score from a form or link; ``ValueError`` unless a whole number on the scale."""
    low, high = SCALES[kind]
    text = raw.strip()
    # ASCII digits only: "+3", "4.0", "1e1" and "٣" (int() reads it as 3) are not scores.
    if not (text.isascii() and text.isdigit()) or len(text) > 2:
        raise ValueError(f"choose a whole number from {low} to {high}")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"choose a whole number from {low} to {high}")
    return value


def clean_text(raw: str) -> str:
    """Free text as we keep it: line breaks and tabs stay, other control and format
    characters (NUL, bidi overrides) go; it is stored as text and shown escaped."""
    kept = (
        ch
        for ch in raw.replace("\r\n", "\n").replace("\r", "\n")
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co")
    )
    return "".join(kept).strip()


def read_answer(
    questions: tuple[Question, ...], form: Mapping[str, str], *, text_limit: int
) -> Answer:
    """The answer a submitted form gives, or ``AnswerRefused`` naming each problem.
    Empty optional questions stay empty; unknown form fields are ignored."""
    problems: dict[str, str] = {}
    values: dict[str, Any] = {}
    others: dict[str, Any] = {}
    for question in questions:
        raw = str(form.get(question.key, ""))
        if not raw.strip():
            if question.required:
                problems[question.key] = "required"
            continue
        try:
            value = _read_one(question, raw, text_limit=text_limit)
        except ValueError as error:
            problems[question.key] = str(error)
            continue
        if question.kind in SCORE_KINDS:
            values[question.kind.value] = value
        elif question.key in (COMMENT, MAY_CONTACT):
            values[question.key] = value
        else:
            others[question.key] = value
    if problems:
        raise AnswerRefused(problems)
    return Answer(**values, others=others)


def _read_one(question: Question, raw: str, *, text_limit: int) -> int | bool | str | None:
    if question.kind in SCORE_KINDS:
        return read_score(question.kind, raw)
    if question.kind is QuestionKind.YES_NO:
        if raw.strip() not in ("yes", "no"):
            raise ValueError("answer yes or no")
        return raw.strip() == "yes"
    if len(raw) > text_limit:
        raise ValueError(f"at most {text_limit} characters")
    return clean_text(raw) or None


@dataclass(frozen=True, kw_only=True)
class LowScoreRule:
    """A score at or under a threshold needs a person; None switches a scale off."""

    csat_at_most: int | None = 2
    nps_at_most: int | None = 6
    ces_at_most: int | None = None


def low_score_reasons(answer: Answer, rule: LowScoreRule) -> list[str]:
    """Why this answer is a low score (empty: it is not)."""
    reasons = []
    for name, value, limit in (
        ("CSAT", answer.csat, rule.csat_at_most),
        ("NPS", answer.nps, rule.nps_at_most),
        ("CES", answer.ces, rule.ces_at_most),
    ):
        if value is not None and limit is not None and value <= limit:
            reasons.append(f"{name} {value} ≤ {limit}")
    return reasons


def summary_of(answer: Answer) -> str:
    parts = []
    if answer.csat is not None:
        parts.append(f"CSAT {answer.csat}/5")
    if answer.nps is not None:
        parts.append(f"NPS {answer.nps}/10")
    if answer.ces is not None:
        parts.append(f"CES {answer.ces}/7")
    if answer.comment:
        parts.append(f"“{' '.join(answer.comment.split())[:200]}”")
    return "Survey answered: " + (", ".join(parts) or "no scores")

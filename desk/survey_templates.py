"""Survey templates: which questions a survey asks, per team and/or channel, versioned.

Saving new questions writes a new version; surveys point at the version they
were sent with, so an answer always reads against the questions it answered.
A survey picks the most specific active template: team and channel, then team,
then channel, then the fallback (neither).  Without any, the built-in default
template is created on first use.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from desk.errors import Conflict, InvalidInput, NotFound
from desk.models import SurveyTemplate, SurveyTemplateVersion, Team
from desk.survey_questions import DEFAULT_QUESTIONS, Question, QuestionList, questions_from_json

DEFAULT_NAME = "default"
SourceChannel = Literal["phone", "web", "email", "api"]


class TemplateDraft(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    team_id: int | None = None
    channel: SourceChannel | None = Field(
        None, description="The channel the customer came through (a call is phone)."
    )
    active: bool = True
    questions: Annotated[list[Question], Field(min_length=1, max_length=12)]

    @field_validator("questions")
    @classmethod
    def _well_formed(cls, value: list[Question]) -> list[Question]:
        QuestionList(questions=value)  # unique keys, each score kind once
        return value


class TemplatePatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: int = Field(description="The current_version you read; a stale one is refused.")
    name: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
        | None
    ) = None
    team_id: int | None = None
    channel: SourceChannel | None = None
    active: bool | None = None
    questions: Annotated[list[Question], Field(min_length=1, max_length=12)] | None = None

    @field_validator("questions")
    @classmethod
    def _well_formed(cls, value: list[Question] | None) -> list[Question] | None:
        if value is not None:
            QuestionList(questions=value)
        return value


def _dump(questions: tuple[Question, ...] | list[Question]) -> list[dict[str, object]]:
    return [q.model_dump(mode="json") for q in questions]


def _insert(session: AsyncSession) -> type[postgresql.Insert] | type[sqlite.Insert]:
    name = session.get_bind().dialect.name
    return postgresql.Insert if name == "postgresql" else sqlite.Insert


async def _check_team(session: AsyncSession, team_id: int | None) -> None:
    if team_id is not None and await session.get(Team, team_id) is None:
        raise InvalidInput("team_id refers to nothing", fields={"team_id": "not found"})


async def _name_taken(session: AsyncSession, name: str, *, other_than: int | None = None) -> bool:
    query = select(SurveyTemplate.id).where(SurveyTemplate.name == name)
    if other_than is not None:
        query = query.where(SurveyTemplate.id != other_than)
    return await session.scalar(query) is not None


async def create_template(
    session: AsyncSession, draft: TemplateDraft, *, actor_id: int | None, now: datetime
) -> SurveyTemplate:
    await _check_team(session, draft.team_id)
    if await _name_taken(session, draft.name):
        raise Conflict(f"a template named {draft.name!r} exists", fields={"name": "taken"})
    template = SurveyTemplate(
        name=draft.name,
        team_id=draft.team_id,
        channel=draft.channel,
        active=draft.active,
        current_version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(template)
    await session.flush()
    session.add(
        SurveyTemplateVersion(
            template_id=template.id,
            version=1,
            questions=_dump(draft.questions),
            created_at=now,
            created_by=actor_id,
        )
    )
    await session.flush()
    return template


async def change_template(
    session: AsyncSession,
    template_id: int,
    patch: TemplatePatch,
    *,
    actor_id: int | None,
    now: datetime,
) -> SurveyTemplate:
    """Apply ``patch``; new questions become a new version, older ones are kept."""
    template = await get_template(session, template_id)
    if patch.version != template.current_version:
        raise Conflict(
            f"template {template_id} is at version {template.current_version}, "
            f"you sent {patch.version}; reload and retry",
            fields={"version": f"current version is {template.current_version}"},
        )
    given = patch.model_fields_set
    if "name" in given and patch.name is not None and patch.name != template.name:
        if await _name_taken(session, patch.name, other_than=template.id):
            raise Conflict(f"a template named {patch.name!r} exists", fields={"name": "taken"})
        template.name = patch.name
    if "team_id" in given:
        await _check_team(session, patch.team_id)
        template.team_id = patch.team_id
    if "channel" in given:
        template.channel = patch.channel
    if "active" in given and patch.active is not None:
        template.active = patch.active
    if patch.questions is not None:
        current = await current_version(session, template)
        if current.questions != _dump(patch.questions):
            template.current_version += 1
            session.add(
                SurveyTemplateVersion(
                    template_id=template.id,
                    version=template.current_version,
                    questions=_dump(patch.questions),
                    created_at=now,
                    created_by=actor_id,
                )
            )
    template.updated_at = now
    await session.flush()
    return template


async def get_template(session: AsyncSession, template_id: int) -> SurveyTemplate:
    template = await session.get(SurveyTemplate, template_id)
    if template is None:
        raise NotFound(f"survey template {template_id} not found")
    return template


async def list_templates(session: AsyncSession) -> list[SurveyTemplate]:
    return list(await session.scalars(select(SurveyTemplate).order_by(SurveyTemplate.id)))


async def template_versions(session: AsyncSession, template_id: int) -> list[SurveyTemplateVersion]:
    rows = await session.scalars(
        select(SurveyTemplateVersion)
        .where(SurveyTemplateVersion.template_id == template_id)
        .order_by(SurveyTemplateVersion.version)
    )
    return list(rows)


async def current_version(session: AsyncSession, template: SurveyTemplate) -> SurveyTemplateVersion:
    version = await session.scalar(
        select(SurveyTemplateVersion).where(
            SurveyTemplateVersion.template_id == template.id,
            SurveyTemplateVersion.version == template.current_version,
        )
    )
    assert version is not None  # written with the template, never deleted
    return version


def specificity(template: SurveyTemplate, *, team_id: int | None, channel: str) -> int | None:
    """How well a template fits (higher is better), or None: it does not apply."""
    if not template.active:
        return None
    if template.team_id is not None and template.team_id != team_id:
        return None
    if template.channel is not None and template.channel != channel:
        return None
    return 2 * (template.team_id is not None) + (template.channel is not None)


async def template_for(
    session: AsyncSession, *, team_id: int | None, channel: str, now: datetime
) -> SurveyTemplateVersion:
    """The version a new survey for this team and channel asks."""
    fits = [
        (rank, template.id, template)
        for template in await list_templates(session)
        if (rank := specificity(template, team_id=team_id, channel=channel)) is not None
    ]
    if fits:
        _, _, best = max(fits, key=lambda fit: (fit[0], -fit[1]))
        return await current_version(session, best)
    return await _default_version(session, now=now)


async def _default_version(session: AsyncSession, *, now: datetime) -> SurveyTemplateVersion:
    # Two first surveys at once on PostgreSQL: the name is unique, so one insert wins.
    values = {
        "name": DEFAULT_NAME,
        "team_id": None,
        "channel": None,
        "active": True,
        "current_version": 1,
        "created_at": now,
        "updated_at": now,
    }
    statement = (
        _insert(session)(SurveyTemplate)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(SurveyTemplate.id)
    )
    created = (await session.execute(statement)).scalar()
    if created is not None:
        version = SurveyTemplateVersion(
            template_id=created,
            version=1,
            questions=_dump(DEFAULT_QUESTIONS),
            created_at=now,
            created_by=None,
        )
        session.add(version)
        await session.flush()
        return version
    template = await session.scalar(
        select(SurveyTemplate).where(SurveyTemplate.name == DEFAULT_NAME)
    )
    assert template is not None
    return await current_version(session, template)


async def questions_of(session: AsyncSession, version_id: int) -> tuple[Question, ...]:
    version = await session.get(SurveyTemplateVersion, version_id)
    if version is None:
        raise NotFound(f"survey template version {version_id} not found")
    return questions_from_json(version.questions)

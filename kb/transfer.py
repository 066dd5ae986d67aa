"""Import and export a folder of Markdown articles (kb.folder is the file format).

Each file is imported in its own transaction: a bad file is reported with its
problem and the others go in.  An article is found again by language and slug,
so importing the same folder twice changes nothing, and an edited file becomes
a new version.  The state in the front matter is reached through the workflow
as the operator (the command line is trusted like a reviewer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.errors import DeskError
from kb.articles import change_state, create_article, edit_article, get_version
from kb.categories import category_by_slug, category_nodes, change_category, create_category
from kb.folder import (
    ArticleFile,
    FileProblem,
    parse_article,
    parse_categories,
    render_article,
    render_categories,
)
from kb.index_writer import clear_index, index_all, recount_terms
from kb.options import KbOptions
from kb.records import ArticleState, KbArticle, KbFamily
from kb.shapes import ArticleDraft, ArticlePatch, CategoryDraft, CategoryPatch, TransitionIn

CATEGORIES_FILE = "categories.yaml"
Progress = Callable[[int], None]


@dataclass
class FolderReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, what is wrong)

    @property
    def ok(self) -> bool:
        return not self.problems


def article_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.md") if p.is_file())


async def import_folder(
    sessions: async_sessionmaker[AsyncSession],
    folder: Path,
    *,
    now: datetime,
    options: KbOptions,
    on_progress: Progress | None = None,
) -> FolderReport:
    report = FolderReport()
    categories = folder / CATEGORIES_FILE
    if categories.exists():
        await _import_categories(sessions, categories, report, now=now, options=options)
    seen: dict[tuple[str, str], str] = {}
    for done, path in enumerate(article_files(folder), start=1):
        name = str(path.relative_to(folder))
        try:
            wanted = parse_article(await asyncio.to_thread(path.read_bytes))
            key = (wanted.language, wanted.slug or "")
            if wanted.slug and key in seen:
                raise FileProblem(
                    f"slug {wanted.slug!r} ({wanted.language}) is also in {seen[key]}"
                )
            async with sessions() as session:
                outcome = await _import_one(session, wanted, name, now=now, options=options)
                await session.commit()
            if wanted.slug:
                seen[key] = name
            setattr(report, outcome, getattr(report, outcome) + 1)
        except (FileProblem, DeskError, OSError) as exc:
            message = exc.message if isinstance(exc, DeskError) else str(exc)
            if isinstance(exc, DeskError) and exc.fields:
                message += " (" + "; ".join(f"{k}: {v}" for k, v in exc.fields.items()) + ")"
            report.problems.append((name, message))
        if on_progress is not None:
            on_progress(done)
    return report


async def _import_categories(
    sessions: async_sessionmaker[AsyncSession],
    path: Path,
    report: FolderReport,
    *,
    now: datetime,
    options: KbOptions,
) -> None:
    try:
        items = parse_categories(await asyncio.to_thread(path.read_bytes))
    except FileProblem as exc:
        report.problems.append((CATEGORIES_FILE, str(exc)))
        return
    for item in items:  # parents before children, as exported
        try:
            async with sessions() as session:
                parent = None
                if item.get("parent"):
                    found = await category_by_slug(session, str(item["parent"]))
                    parent = found.id if found else None
                existing = await category_by_slug(session, str(item.get("slug", "")))
                names = {str(k): str(v) for k, v in (item.get("names") or {}).items()}
                if existing is None:
                    draft = CategoryDraft.model_validate(
                        {"slug": str(item.get("slug", "")), "names": names, "parent_id": parent,
                         "position": int(item.get("position", 0))}
                    )  # fmt: skip
                    await create_category(session, draft, now=now, options=options)
                else:
                    patch = CategoryPatch(names=names or None, parent_id=parent)
                    await change_category(session, existing.id, patch, options=options)
                await session.commit()
        except (ValidationError, DeskError, ValueError, TypeError) as exc:
            what = exc.message if isinstance(exc, DeskError) else str(exc).splitlines()[0]
            report.problems.append((CATEGORIES_FILE, f"category {item.get('slug')!r}: {what}"))


async def _import_one(
    session: AsyncSession, wanted: ArticleFile, name: str, *, now: datetime, options: KbOptions
) -> str:
    category_id = None
    if wanted.category:
        category = await category_by_slug(session, wanted.category)
        if category is None:
            raise FileProblem(f"no category {wanted.category!r} (add it to {CATEGORIES_FILE})")
        category_id = category.id
    article = None
    if wanted.slug:
        article = await session.scalar(
            select(KbArticle).where(
                KbArticle.language == wanted.language, KbArticle.slug == wanted.slug
            )
        )
    if article is None:
        draft = ArticleDraft(
            title=wanted.title,
            body=wanted.body,
            summary=wanted.summary,
            language=wanted.language,
            slug=wanted.slug,
            category_id=category_id,
            tags=wanted.tags,
            audience=wanted.audience,
        )
        article = await create_article(
            session, draft, actor=None, now=now, options=options,
            family_key=wanted.translation_key,
        )  # fmt: skip
        outcome = "created"
    else:
        head = await get_version(session, article.id, article.head_version)
        same = (
            head.title == wanted.title
            and head.body_md == wanted.body
            and head.summary == wanted.summary
            and list(head.tags) == wanted.tags
            and head.category_id == category_id
            and head.audience == wanted.audience.value
        )
        outcome = "unchanged"
        if not same:
            patch = ArticlePatch(
                version=article.head_version,
                title=wanted.title,
                body=wanted.body,
                summary=wanted.summary,
                category_id=category_id,
                clear_category=category_id is None,
                tags=wanted.tags,
                audience=wanted.audience,
                note=f"imported from {name}"[:500],
            )
            article = await edit_article(session, article.id, patch, actor=None, now=now)
            outcome = "updated"
    if await _reach_state(session, article, wanted.state, now=now) and outcome == "unchanged":
        outcome = "updated"
    return outcome


# How the operator walks an article to the state a file asks for.
_PATHS: dict[tuple[ArticleState, ArticleState], tuple[ArticleState, ...]] = {
    (ArticleState.DRAFT, ArticleState.IN_REVIEW): (ArticleState.IN_REVIEW,),
    (ArticleState.DRAFT, ArticleState.PUBLISHED): (ArticleState.PUBLISHED,),
    (ArticleState.DRAFT, ArticleState.ARCHIVED): (ArticleState.ARCHIVED,),
    (ArticleState.IN_REVIEW, ArticleState.DRAFT): (ArticleState.DRAFT,),
    (ArticleState.IN_REVIEW, ArticleState.PUBLISHED): (ArticleState.PUBLISHED,),
    (ArticleState.IN_REVIEW, ArticleState.ARCHIVED): (ArticleState.ARCHIVED,),
    (ArticleState.PUBLISHED, ArticleState.ARCHIVED): (ArticleState.ARCHIVED,),
    (ArticleState.ARCHIVED, ArticleState.DRAFT): (ArticleState.DRAFT,),
    (ArticleState.ARCHIVED, ArticleState.IN_REVIEW): (ArticleState.DRAFT, ArticleState.IN_REVIEW),
    (ArticleState.ARCHIVED, ArticleState.PUBLISHED): (ArticleState.DRAFT, ArticleState.PUBLISHED),
}


async def _reach_state(
    session: AsyncSession, article: KbArticle, wanted: ArticleState, *, now: datetime
) -> bool:
    current = ArticleState(article.state)
    if current == wanted:
        return False
    if (current, wanted) not in _PATHS:
        raise FileProblem(f"cannot take the article from {current} to {wanted} by import")
    for step in _PATHS[(current, wanted)]:
        move = TransitionIn(to=step, version=article.head_version, note="import")
        article = await change_state(session, article.id, move, actor=None, now=now)
    return True


async def export_folder(
    sessions: async_sessionmaker[AsyncSession],
    folder: Path,
    *,
    on_progress: Progress | None = None,
) -> int:
    """Write every article's newest version to ``<folder>/<language>/<slug>.md`` and the
    category tree to ``categories.yaml``; returns how many articles were written."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    async with sessions() as session:
        nodes = await category_nodes(session)
        slugs = {n.id: n.slug for n in nodes}
        ordered = _parents_first(nodes)
        items: list[dict[str, Any]] = [
            {"slug": n.slug, "names": n.names, "parent": slugs.get(n.parent_id or 0),
             "position": n.position}
            for n in ordered
        ]  # fmt: skip
        await asyncio.to_thread(_write, folder / CATEGORIES_FILE, render_categories(items))
        keys = {fid: key for fid, key in await session.execute(select(KbFamily.id, KbFamily.key))}
        ids = list(await session.scalars(select(KbArticle.id).order_by(KbArticle.id)))
    written = 0
    for start in range(0, len(ids), 500):
        async with sessions() as session:
            articles = await session.scalars(
                select(KbArticle).where(KbArticle.id.in_(ids[start : start + 500]))
            )
            for article in articles:
                head = await get_version(session, article.id, article.head_version)
                text = render_article(
                    head,
                    language=article.language,
                    state=article.state,
                    category=slugs.get(head.category_id or 0),
                    translation_key=keys[article.family_id],
                )
                await asyncio.to_thread(_write, folder / article.language / f"{head.slug}.md", text)
                written += 1
                if on_progress is not None:
                    on_progress(written)
    return written


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _parents_first(nodes: list[Any]) -> list[Any]:
    placed: list[Any] = []
    ids: set[int | None] = {None}
    remaining = list(nodes)
    while remaining:
        ready = [n for n in remaining if n.parent_id in ids]
        if not ready:  # a loop cannot be saved, but never hang on one
            ready = remaining
        for node in ready:
            placed.append(node)
            ids.add(node.id)
            remaining.remove(node)
    return placed


async def rebuild_index(
    sessions: async_sessionmaker[AsyncSession],
    *,
    batch: int = 2000,
    on_progress: Progress | None = None,
) -> int:
    """Rewrite the whole search index from the articles (after a change to kb.terms)."""
    async with sessions() as session:
        await clear_index(session)
        await session.commit()
    last, done = 0, 0
    while True:
        async with sessions() as session:
            rows = list(
                await session.scalars(
                    select(KbArticle).where(KbArticle.id > last).order_by(KbArticle.id).limit(batch)
                )
            )
            if not rows:
                await recount_terms(session)
                await session.commit()
                return done
            await index_all(session, rows)
            await session.commit()
        last, done = rows[-1].id, done + len(rows)
        if on_progress is not None:
            on_progress(done)

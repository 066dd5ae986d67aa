"""The category tree: help-center sections and sub-sections, named in each language."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from desk.errors import Conflict, InvalidInput, NotFound
from kb.options import KbOptions
from kb.records import KbArticle, KbCategory
from kb.shapes import CategoryDraft, CategoryPatch


@dataclass(frozen=True, slots=True)
class CategoryNode:
    id: int
    slug: str
    parent_id: int | None
    names: dict[str, str]
    position: int

    def name(self, language: str, fallback: str) -> str:
        return self.names.get(language) or self.names.get(fallback) or self.slug


def descendants(nodes: Iterable[CategoryNode], root: int) -> tuple[int, ...]:
    """``root`` and every category below it (a filter on a section covers its sub-sections)."""
    children: dict[int | None, list[int]] = {}
    for node in nodes:
        children.setdefault(node.parent_id, []).append(node.id)
    found, stack = [root], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.append(child)
                stack.append(child)
    return tuple(found)


def path_to(nodes: Iterable[CategoryNode], category_id: int) -> list[CategoryNode]:
    """The breadcrumb: top-level category first."""
    by_id = {node.id: node for node in nodes}
    path: list[CategoryNode] = []
    current = by_id.get(category_id)
    while current is not None and current not in path:
        path.insert(0, current)
        current = by_id.get(current.parent_id) if current.parent_id is not None else None
    return path


def _node(category: KbCategory) -> CategoryNode:
    return CategoryNode(
        category.id, category.slug, category.parent_id, dict(category.names), category.position
    )


async def category_nodes(session: AsyncSession) -> list[CategoryNode]:
    rows = await session.scalars(select(KbCategory).order_by(KbCategory.position, KbCategory.id))
    return [_node(c) for c in rows]


async def category_by_slug(session: AsyncSession, slug: str) -> KbCategory | None:
    return await session.scalar(select(KbCategory).where(KbCategory.slug == slug))


def _check_names(names: dict[str, str], options: KbOptions) -> None:
    unknown = sorted(set(names) - set(options.languages))
    if unknown:
        raise InvalidInput(
            f"names in languages that are not configured: {', '.join(unknown)}",
            fields={"names": "unknown language"},
        )
    if options.default_language not in names:
        raise InvalidInput(
            f"a category needs a name in {options.default_language}",
            fields={"names": f"missing {options.default_language}"},
        )


async def create_category(
    session: AsyncSession, draft: CategoryDraft, *, now: datetime, options: KbOptions
) -> KbCategory:
    _check_names(draft.names, options)
    if await category_by_slug(session, draft.slug) is not None:
        raise Conflict(f"a category already uses the slug {draft.slug!r}", fields={"slug": "taken"})
    if draft.parent_id is not None and await session.get(KbCategory, draft.parent_id) is None:
        raise InvalidInput("no such parent category", fields={"parent_id": "no such category"})
    category = KbCategory(
        slug=draft.slug,
        names=dict(draft.names),
        parent_id=draft.parent_id,
        position=draft.position,
        created_at=now,
    )
    session.add(category)
    await session.flush()
    return category


async def change_category(
    session: AsyncSession, category_id: int, patch: CategoryPatch, *, options: KbOptions
) -> KbCategory:
    category = await session.get(KbCategory, category_id)
    if category is None:
        raise NotFound(f"no category {category_id}")
    if patch.names is not None:
        _check_names(patch.names, options)
        category.names = dict(patch.names)
    if patch.to_top:
        category.parent_id = None
    elif patch.parent_id is not None:
        nodes = await category_nodes(session)
        if patch.parent_id not in {n.id for n in nodes}:
            raise InvalidInput("no such parent category", fields={"parent_id": "no such category"})
        if patch.parent_id in descendants(nodes, category.id):
            raise InvalidInput(
                "a category cannot move below itself", fields={"parent_id": "would make a loop"}
            )
        category.parent_id = patch.parent_id
    if patch.position is not None:
        category.position = patch.position
    await session.flush()
    return category


async def delete_category(session: AsyncSession, category_id: int) -> None:
    """Only an empty category goes: articles and sub-categories are moved first."""
    category = await session.get(KbCategory, category_id)
    if category is None:
        raise NotFound(f"no category {category_id}")
    articles = await session.scalar(
        select(func.count()).select_from(KbArticle).where(KbArticle.category_id == category_id)
    )
    children = await session.scalar(
        select(func.count()).select_from(KbCategory).where(KbCategory.parent_id == category_id)
    )
    if articles or children:
        raise Conflict(
            f"the category still has {articles} articles and {children} sub-categories; "
            "move them first"
        )
    await session.delete(category)
    await session.flush()

"""Knowledge base API: staff write, reviewers publish, everyone reads public articles.

Request shapes are kb.shapes; the response shapes are here.  Reviewers are
supervisors and admins (kb.workflow); the domain refuses a non-reviewer's
publish with 403 whatever the route allows.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from desk.models import Role
from desk.tickets import get_ticket
from kb.articles import (
    add_translation,
    change_state,
    create_article,
    edit_article,
    get_article,
    get_version,
    list_articles,
)
from kb.categories import (
    category_nodes,
    change_category,
    create_category,
    delete_category,
)
from kb.diffs import diff_versions
from kb.events import state_changed
from kb.feedback import needing_review, record_vote
from kb.history import restore_version, state_changes, versions
from kb.index import Scope
from kb.options import KbOptions
from kb.records import ArticleState, Audience, KbArticleVersion, LinkKind
from kb.responses import (
    ArticleBriefOut,
    ArticleListQuery,
    ArticleOut,
    ArticlePageOut,
    CategoryListOut,
    CategoryOut,
    DiffOut,
    DiffQuery,
    FieldChangeOut,
    LinkOut,
    PageQuery,
    ReviewItemOut,
    ReviewPageOut,
    SearchHitOut,
    SearchPageOut,
    StateChangeOut,
    StateHistoryOut,
    SuggestionListOut,
    SuggestionOut,
    TicketLinkListOut,
    TicketLinkOut,
    VersionListOut,
    VersionOut,
    VoteOut,
    article_out,
    public_url,
)
from kb.search import SearchPage, scope_for, search_articles
from kb.shapes import (
    ArticleDraft,
    ArticlePatch,
    CategoryDraft,
    CategoryPatch,
    LinkIn,
    RestoreIn,
    SearchQuery,
    TicketText,
    TransitionIn,
    TranslationDraft,
    VoteIn,
)
from kb.suggestions import Suggestion, suggest_for_customer, suggest_for_text
from kb.ticket_links import draft_from_ticket, link_article, ticket_links
from web.api.endpoints import (
    PUBLIC,
    STAFF,
    SUPERVISORS,
    Endpoint,
    Handler,
    current_user,
    path_id,
    read_body,
    read_query,
    unit_of_work,
)
from web.api.errors import ApiError
from web.state import CLOCK, READS

KB_OPTIONS = web.AppKey("kb_options", KbOptions)
TAG = "knowledge base"


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)


# --- categories ---------------------------------------------------------------


async def categories(request: web.Request) -> web.Response:
    async with request.app[READS]() as session:
        nodes = await category_nodes(session)
    return _json(CategoryListOut(items=[CategoryOut.model_validate(n) for n in nodes]))


async def add_category(request: web.Request) -> web.Response:
    draft = await read_body(request, CategoryDraft)
    async with unit_of_work(request) as uow:
        category = await create_category(
            uow.session, draft, now=request.app[CLOCK].now(), options=request.app[KB_OPTIONS]
        )
        out = CategoryOut.model_validate(category)
        await uow.commit()
    return _json(out, 201)


async def update_category(request: web.Request) -> web.Response:
    patch = await read_body(request, CategoryPatch)
    async with unit_of_work(request) as uow:
        category = await change_category(
            uow.session, path_id(request), patch, options=request.app[KB_OPTIONS]
        )
        out = CategoryOut.model_validate(category)
        await uow.commit()
    return _json(out)


async def remove_category(request: web.Request) -> web.Response:
    async with unit_of_work(request) as uow:
        await delete_category(uow.session, path_id(request))
        await uow.commit()
    return web.Response(status=204)


# --- articles -----------------------------------------------------------------


async def index(request: web.Request) -> web.Response:
    query = read_query(request, ArticleListQuery)
    async with request.app[READS]() as session:
        rows, total = await list_articles(
            session,
            state=query.state,
            language=query.language,
            category_id=query.category_id,
            owner_id=query.owner_id,
            limit=query.limit,
            offset=query.offset,
        )
        items = [ArticleBriefOut.model_validate(a) for a in rows]
    return _json(ArticlePageOut(items=items, total=total))


async def create(request: web.Request) -> web.Response:
    draft = await read_body(request, ArticleDraft)
    async with unit_of_work(request) as uow:
        article = await create_article(
            uow.session,
            draft,
            actor=current_user(request),
            now=request.app[CLOCK].now(),
            options=request.app[KB_OPTIONS],
        )
        out = await article_out(uow.session, article)
        await uow.commit()
    return _json(out, 201)


async def read(request: web.Request) -> web.Response:
    async with request.app[READS]() as session:
        article = await get_article(session, path_id(request))
        out = await article_out(session, article)
    return _json(out)


async def update(request: web.Request) -> web.Response:
    patch = await read_body(request, ArticlePatch)
    async with unit_of_work(request) as uow:
        article = await edit_article(
            uow.session,
            path_id(request),
            patch,
            actor=current_user(request),
            now=request.app[CLOCK].now(),
        )
        out = await article_out(uow.session, article)
        await uow.commit()
    return _json(out)


async def transition(request: web.Request) -> web.Response:
    wanted = await read_body(request, TransitionIn)
    user, now = current_user(request), request.app[CLOCK].now()
    async with unit_of_work(request) as uow:
        before = (await get_article(uow.session, path_id(request))).state
        article = await change_state(uow.session, path_id(request), wanted, actor=user, now=now)
        uow.record(state_changed(article, before, actor_id=user.id, now=now))
        out = await article_out(uow.session, article)
        await uow.commit()
    return _json(out)


async def translate(request: web.Request) -> web.Response:
    draft = await read_body(request, TranslationDraft)
    async with unit_of_work(request) as uow:
        article = await add_translation(
            uow.session,
            path_id(request),
            draft,
            actor=current_user(request),
            now=request.app[CLOCK].now(),
            options=request.app[KB_OPTIONS],
        )
        out = await article_out(uow.session, article)
        await uow.commit()
    return _json(out, 201)


async def version_list(request: web.Request) -> web.Response:
    async with request.app[READS]() as session:
        rows = await versions(session, path_id(request))
        items = [VersionOut.model_validate(v) for v in rows]
    return _json(VersionListOut(items=items))


async def diff(request: web.Request) -> web.Response:
    article_id = path_id(request)
    query = read_query(request, DiffQuery)
    async with request.app[READS]() as session:
        await get_article(session, article_id)
        old: KbArticleVersion = await get_version(session, article_id, query.from_version)
        new: KbArticleVersion = await get_version(session, article_id, query.to_version)
        changes = [FieldChangeOut.model_validate(c) for c in diff_versions(old, new)]
    return _json(DiffOut(from_version=old.number, to_version=new.number, changes=changes))


async def restore(request: web.Request) -> web.Response:
    wanted = await read_body(request, RestoreIn)
    async with unit_of_work(request) as uow:
        article = await restore_version(
            uow.session,
            path_id(request),
            path_id(request, "number"),
            seen=wanted.version,
            actor=current_user(request),
            now=request.app[CLOCK].now(),
            note=wanted.note,
        )
        out = await article_out(uow.session, article)
        await uow.commit()
    return _json(out)


async def workflow_history(request: web.Request) -> web.Response:
    async with request.app[READS]() as session:
        rows = await state_changes(session, path_id(request))
        items = [StateChangeOut.model_validate(c) for c in rows]
    return _json(StateHistoryOut(items=items))


# --- search and suggestions -----------------------------------------------------


def _page_out(page: SearchPage) -> SearchPageOut:
    return SearchPageOut(
        items=[
            SearchHitOut(
                id=hit.article.id,
                language=hit.article.language,
                slug=hit.article.slug,
                title=hit.article.title,
                summary=hit.article.summary,
                audience=hit.article.audience,
                title_html=hit.title_html,
                snippet_html=hit.snippet_html,
                url=public_url(hit.article),
            )
            for hit in page.hits
        ],
        total=page.total,
        total_capped=page.capped,
        page=page.page,
        per_page=page.per_page,
        pages=page.pages,
        matched=page.matched,
    )


async def search(request: web.Request) -> web.Response:
    query = read_query(request, SearchQuery)
    async with request.app[READS]() as session:
        scope = await scope_for(session, query, Scope())
        page = await search_articles(session, query, scope)
    return _json(_page_out(page))


async def public_search(request: web.Request) -> web.Response:
    query = read_query(request, SearchQuery)
    if query.state not in (None, ArticleState.PUBLISHED) or query.audience == Audience.INTERNAL:
        raise ApiError(422, "invalid_input", "the public sees published public articles only")
    query = query.model_copy(update={"state": None, "audience": None})
    async with request.app[READS]() as session:
        scope = await scope_for(session, query, Scope(audiences=(Audience.PUBLIC.value,)))
        page = await search_articles(session, query, scope)
    return _json(_page_out(page))


def _suggestions_out(found: list[Suggestion]) -> SuggestionListOut:
    return SuggestionListOut(items=[SuggestionOut.model_validate(s) for s in found])


async def suggest(request: web.Request) -> web.Response:
    wanted = await read_body(request, TicketText)
    async with request.app[READS]() as session:
        found = await suggest_for_text(
            session,
            wanted.subject,
            wanted.description,
            language=wanted.language,
            limit=wanted.limit,
        )
    return _json(_suggestions_out(found))


async def ticket_suggestions(request: web.Request) -> web.Response:
    ticket_id = path_id(request)
    async with request.app[READS]() as session:
        ticket = await get_ticket(session, ticket_id)
        linked = tuple(link.article_id for link, _ in await ticket_links(session, ticket_id))
        found = await suggest_for_text(session, ticket.subject, ticket.description, exclude=linked)
    return _json(_suggestions_out(found))


async def customer_suggestions(request: web.Request) -> web.Response:
    async with request.app[READS]() as session:
        found = await suggest_for_customer(session, path_id(request))
    return _json(_suggestions_out(found))


# --- tickets, votes, review --------------------------------------------------------


async def link(request: web.Request) -> web.Response:
    wanted = await read_body(request, LinkIn)
    async with unit_of_work(request) as uow:
        outcome = await link_article(
            uow.session,
            path_id(request),
            wanted.ticket_id,
            wanted.kind,
            actor=current_user(request),
            now=request.app[CLOCK].now(),
        )
        out = LinkOut(
            article_id=outcome.article.id,
            ticket_id=wanted.ticket_id,
            kind=wanted.kind,
            created=outcome.created,
            link_count=outcome.article.link_count,
            reply_text=outcome.reply_text,
        )
        await uow.commit()
    return _json(out, 201 if outcome.created else 200)


async def links_of_ticket(request: web.Request) -> web.Response:
    async with request.app[READS]() as session:
        rows = await ticket_links(session, path_id(request))
        items = [
            TicketLinkOut(
                article_id=article.id,
                title=article.title,
                kind=LinkKind(row.kind),
                user_id=row.user_id,
                created_at=row.created_at,
            )
            for row, article in rows
        ]
    return _json(TicketLinkListOut(items=items))


async def from_ticket(request: web.Request) -> web.Response:
    async with unit_of_work(request) as uow:
        article, created = await draft_from_ticket(
            uow.session,
            path_id(request),
            actor=current_user(request),
            now=request.app[CLOCK].now(),
            options=request.app[KB_OPTIONS],
        )
        out = await article_out(uow.session, article)
        await uow.commit()
    return _json(out, 201 if created else 200)


async def vote(request: web.Request) -> web.Response:
    wanted = await read_body(request, VoteIn)
    user = current_user(request)
    async with unit_of_work(request) as uow:
        outcome = await record_vote(
            uow.session,
            path_id(request),
            voter=f"user:{user.id}",
            helpful=wanted.helpful,
            now=request.app[CLOCK].now(),
            options=request.app[KB_OPTIONS],
        )
        await uow.commit()
    return _json(VoteOut.model_validate(outcome, from_attributes=True))


async def review(request: web.Request) -> web.Response:
    query = read_query(request, PageQuery)
    async with request.app[READS]() as session:
        items, total = await needing_review(
            session,
            now=request.app[CLOCK].now(),
            options=request.app[KB_OPTIONS],
            limit=query.limit,
            offset=query.offset,
        )
        out = ReviewPageOut(
            items=[
                ReviewItemOut(article=ArticleBriefOut.model_validate(i.article), reasons=i.reasons)
                for i in items
            ],
            total=total,
        )
    return _json(out)


async def public_article(request: web.Request) -> web.Response:
    async with request.app[READS]() as session:
        article = await get_article(session, path_id(request))
        if article.live_version is None or article.audience != Audience.PUBLIC:
            raise ApiError(404, "not_found", "no such article")
        out = await article_out(session, article)
    # The public sees what readers see: no drafts, owners or internal translations.
    out = out.model_copy(
        update={
            "pending": None,
            "owner_id": None,
            "source_ticket_id": None,
            "translations": [t for t in out.translations if t.live],
        }
    )
    return _json(out)


async def public_categories(request: web.Request) -> web.Response:
    return await categories(request)


def _e(
    method: str, path: str, handler: Handler, summary: str, roles: frozenset[Role], **kw: Any
) -> Endpoint:
    return Endpoint(method, path, handler, summary, TAG, roles, **kw)


# One row per endpoint; kept as a table (fmt: off) so the whole API reads at a glance.
# fmt: off
ENDPOINTS = [
    _e("GET", "/api/v1/kb/categories", categories, "The category tree", STAFF,
       response=CategoryListOut),
    _e("POST", "/api/v1/kb/categories", add_category, "Add a category (reviewers)", SUPERVISORS,
       body=CategoryDraft, response=CategoryOut, status=201, errors=(409,)),
    _e("PATCH", "/api/v1/kb/categories/{id}", update_category,
       "Rename or move a category (reviewers)", SUPERVISORS, body=CategoryPatch,
       response=CategoryOut),
    _e("DELETE", "/api/v1/kb/categories/{id}", remove_category,
       "Delete an empty category (reviewers)", SUPERVISORS, status=204, errors=(409,)),
    _e("GET", "/api/v1/kb/articles", index, "Articles, newest change first", STAFF,
       query=ArticleListQuery, response=ArticlePageOut),
    _e("POST", "/api/v1/kb/articles", create, "Write a new article (a draft)", STAFF,
       body=ArticleDraft, response=ArticleOut, status=201, errors=(409,)),
    _e("GET", "/api/v1/kb/articles/{id}", read,
       "One article: what readers see, the pending version and the translations", STAFF,
       response=ArticleOut),
    _e("PATCH", "/api/v1/kb/articles/{id}", update,
       "Edit (send the head_version you read; a stale one is refused with 409). Editing a "
       "published article makes a draft of the next version; the published one stays live",
       STAFF, body=ArticlePatch, response=ArticleOut, errors=(409,)),
    _e("POST", "/api/v1/kb/articles/{id}/transitions", transition,
       "Submit for review, publish, send back, archive or bring back; publishing, archiving "
       "and bringing back are for reviewers (403 otherwise)", STAFF, body=TransitionIn,
       response=ArticleOut, errors=(409,)),
    _e("POST", "/api/v1/kb/articles/{id}/translations", translate,
       "Translate: the same article in another language, linked to this one", STAFF,
       body=TranslationDraft, response=ArticleOut, status=201, errors=(409,)),
    _e("GET", "/api/v1/kb/articles/{id}/versions", version_list,
       "Every saved version, newest first", STAFF, response=VersionListOut),
    _e("GET", "/api/v1/kb/articles/{id}/diff", diff, "What changed between two versions",
       STAFF, query=DiffQuery, response=DiffOut),
    _e("POST", "/api/v1/kb/articles/{id}/versions/{number}/restore", restore,
       "Save an old version's content as the newest version", STAFF, body=RestoreIn,
       response=ArticleOut, errors=(409,)),
    _e("GET", "/api/v1/kb/articles/{id}/workflow", workflow_history,
       "Who submitted, published, sent back or archived it, and when", STAFF,
       response=StateHistoryOut),
    _e("POST", "/api/v1/kb/articles/{id}/links", link,
       "Link the article to a ticket, or insert it into a reply (returns the text); counted "
       "once per ticket and kind (200 when it already was)", STAFF, body=LinkIn,
       response=LinkOut, status=201, repeat_status=200, errors=(409,)),
    _e("POST", "/api/v1/kb/articles/{id}/votes", vote,
       "Was this helpful? One vote per agent; voting again changes it", STAFF, body=VoteIn,
       response=VoteOut),
    _e("GET", "/api/v1/kb/search", search,
       "Search live articles (or a state's articles) by words, with filters and pages", STAFF,
       query=SearchQuery, response=SearchPageOut),
    _e("POST", "/api/v1/kb/suggestions", suggest,
       "Articles for a ticket being written (subject and description), with reasons", STAFF,
       body=TicketText, response=SuggestionListOut),
    _e("GET", "/api/v1/kb/tickets/{id}/suggestions", ticket_suggestions,
       "Articles for a saved ticket, leaving out those already linked", STAFF,
       response=SuggestionListOut),
    _e("GET", "/api/v1/kb/tickets/{id}/links", links_of_ticket,
       "Articles linked to or inserted into the ticket", STAFF, response=TicketLinkListOut),
    _e("POST", "/api/v1/kb/tickets/{id}/article", from_ticket,
       "Turn a solved ticket into a draft article (a second call returns the same draft)",
       STAFF, response=ArticleOut, status=201, repeat_status=200, errors=(409,)),
    _e("GET", "/api/v1/kb/customers/{id}/suggestions", customer_suggestions,
       "Articles for the customer's open tickets (the screen pop's suggestions)", STAFF,
       response=SuggestionListOut),
    _e("GET", "/api/v1/kb/review", review,
       "Published articles to look at: poor feedback, or unused for a long time", SUPERVISORS,
       query=PageQuery, response=ReviewPageOut),
    _e("GET", "/api/v1/kb/public/categories", public_categories, "The category tree", PUBLIC,
       response=CategoryListOut),
    _e("GET", "/api/v1/kb/public/search", public_search,
       "Search published public articles (rate-limited per address: 429)", PUBLIC,
       query=SearchQuery, response=SearchPageOut, errors=(429,)),
    _e("GET", "/api/v1/kb/public/articles/{id}", public_article,
       "A published public article", PUBLIC, response=ArticleOut),
]
# fmt: on

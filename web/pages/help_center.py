# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""The public help center: published public articles, server-rendered, no JavaScript.

URLs carry the language (``/help/zh/articles/重置密码``); ``/help`` picks it from
``?lang=`` or the browser's Accept-Language.  Each page links to the same page in
the other languages (the translation, where there is one).

"Was this helpful" is a plain form.  The browser gets a random ``kb_voter``
cookie when it reads an article; the form carries a token signed for that cookie
and article, so a vote needs a page view first, and one browser has one vote per
article (voting again changes it).  kb.feedback caps new votes per address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp_jinja2
from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import func, select

from desk.errors import DeskError
from desk.events import UnitOfWork
from kb.categories import CategoryNode, category_nodes, descendants, path_to
from kb.feedback import record_vote
from kb.index import Scope
from kb.options import KbOptions
from kb.records import Audience, KbArticle
from kb.search import browse, load_in_order, scope_for, search_articles
from kb.shapes import SearchQuery
from web.api.kb_views import KB_OPTIONS
from web.state import BUS, CLOCK, READS, SESSIONS, SETTINGS

VOTER_COOKIE = "kb_voter"
TOKEN_LIFETIME = timedelta(hours=12)
PER_PAGE = 10

_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "help_center": "Help center",
        "search": "Search",
        "search_placeholder": "How can we help?",
        "categories": "Categories",
        "popular": "Popular articles",
        "no_articles": "There are no articles here yet.",
        "results_for": "Results for",
        "no_results": "Nothing matched. Try other words, or contact us.",
        "partial_results": "No article has all of your words; these have some of them.",
        "previous": "Previous",
        "next": "Next",
        "page": "Page",
        "of": "of",
        "page_suffix": "",
        "helpful_question": "Was this article helpful?",
        "yes": "Yes",
        "no": "No",
        "thanks": "Thank you for your feedback.",
        "vote_again": "Your vote could not be recorded; please try again.",
        "found_helpful": "found this helpful",
        "contact": "Still need help? Contact us",
        "not_found": "We could not find that page.",
        "language": "Language",
        "home": "Help center",
        "updated": "Updated",
    },
    "zh": {
        "help_center": "帮助中心",
        "search": "搜索",
        "search_placeholder": "我们能帮您什么？",
        "categories": "分类",
        "popular": "热门文章",
        "no_articles": "这里还没有文章。",
        "results_for": "搜索结果：",
        "no_results": "没有找到相关内容。请换个说法，或联系我们。",
        "partial_results": "没有文章包含全部关键词，以下文章包含部分关键词。",
        "previous": "上一页",
        "next": "下一页",
        "page": "第",
        "of": "页，共",
        "page_suffix": "页",
        "helpful_question": "这篇文章对您有帮助吗？",
        "yes": "有帮助",
        "no": "没有帮助",
        "thanks": "感谢您的反馈。",
        "vote_again": "未能记录您的投票，请重试。",
        "found_helpful": "认为有帮助",
        "contact": "仍需帮助？联系我们",
        "not_found": "找不到该页面。",
        "language": "语言",
        "home": "帮助中心",
        "updated": "更新于",
    },
}
LANGUAGE_NAMES = {"en": "English", "zh": "中文", "de": "Deutsch", "fr": "Français", "ja": "日本語"}


def words(language: str) -> dict[str, str]:
    return _WORDS.get(language, _WORDS["en"])


def preferred_language(header: str, asked: str, languages: tuple[str, ...]) -> str:
    """``?lang=`` if configured, else the browser's best configured language, else the first."""
    if asked in languages:
        return asked
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag.strip() and weight > 0:
            ranked.append((-weight, position, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        for candidate in (tag, tag.split("-")[0]):
            if candidate in languages:
                return candidate
    return languages[0]


def _options(request: web.Request) -> KbOptions:
    return request.app[KB_OPTIONS]


def _language(request: web.Request) -> str:
    language = request.match_info["lang"]
    if language not in _options(request).languages:
        raise web.HTTPNotFound()
    return language


def _public(language: str, **more: Any) -> Scope:
    return Scope(languages=(language,), audiences=(Audience.PUBLIC.value,), **more)


def _context(request: web.Request, language: str, **more: Any) -> dict[str, Any]:
    return {
        "lang": language,
        "t": words(language),
        "languages": [
            (code, LANGUAGE_NAMES.get(code, code)) for code in _options(request).languages
        ],
        "switch": {code: f"/help/{code}" for code in _options(request).languages},
        "q": "",
        **more,
    }


def _category_name(node: CategoryNode, language: str, request: web.Request) -> str:
    return node.name(language, _options(request).default_language)


async def choose_language(request: web.Request) -> web.Response:
    language = preferred_language(
        request.headers.get("Accept-Language", ""),
        request.query.get("lang", ""),
        _options(request).languages,
    )
    raise web.HTTPFound(f"/help/{language}")


async def home(request: web.Request) -> web.Response:
    language = _language(request)
    async with request.app[READS]() as session:
        nodes = await category_nodes(session)
        rows = await session.execute(
            select(KbArticle.category_id, func.count())
            .where(
                KbArticle.live_version.is_not(None),
                KbArticle.audience == Audience.PUBLIC.value,
                KbArticle.language == language,
            )
            .group_by(KbArticle.category_id)
        )
        counts = {category_id: int(n) for category_id, n in rows}
        popular = await load_in_order(
            session, (await browse(session, _public(language), limit=8, offset=0)).ids
        )
    sections = [
        {
            "slug": n.slug,
            "name": _category_name(n, language, request),
            "count": sum(counts.get(i, 0) for i in descendants(nodes, n.id)),
        }
        for n in nodes
        if n.parent_id is None
    ]
    context = _context(request, language, sections=sections, popular=popular)
    return aiohttp_jinja2.render_template("help/home.html", request, context)


async def category(request: web.Request) -> web.Response:
    language = _language(request)
    slug = request.match_info["slug"]
    async with request.app[READS]() as session:
        nodes = await category_nodes(session)
        found = [n for n in nodes if n.slug == slug]
        if not found:
            return _not_found(request, language)
        node = found[0]
        articles = list(
            await session.scalars(
                select(KbArticle)
                .where(
                    KbArticle.live_version.is_not(None),
                    KbArticle.audience == Audience.PUBLIC.value,
                    KbArticle.language == language,
                    KbArticle.category_id == node.id,
                )
                .order_by(KbArticle.title)
                .limit(200)
            )
        )
    children = [
        {"slug": n.slug, "name": _category_name(n, language, request)}
        for n in nodes
        if n.parent_id == node.id
    ]
    context = _context(
        request,
        language,
        name=_category_name(node, language, request),
        crumbs=_crumbs(request, nodes, node.id, language)[:-1],
        children=children,
        articles=articles,
    )
    context["switch"] = {code: f"/help/{code}/categories/{node.slug}" for code in context["switch"]}
    return aiohttp_jinja2.render_template("help/category.html", request, context)


def _crumbs(
    request: web.Request, nodes: list[CategoryNode], category_id: int | None, language: str
) -> list[dict[str, str]]:
    if category_id is None:
        return []
    return [
        {"slug": n.slug, "name": _category_name(n, language, request)}
        for n in path_to(nodes, category_id)
    ]


async def _live_article(request: web.Request, language: str, slug: str) -> KbArticle | None:
    async with request.app[READS]() as session:
        article = await session.scalar(
            select(KbArticle).where(KbArticle.language == language, KbArticle.slug == slug)
        )
    if article is None or article.live_version is None or article.audience != Audience.PUBLIC:
        return None
    return article


async def article_page(request: web.Request) -> web.Response:
    language = _language(request)
    article = await _live_article(request, language, request.match_info["slug"])
    if article is None:
        return _not_found(request, language)
    async with request.app[READS]() as session:
        nodes = await category_nodes(session)
        others = await session.scalars(
            select(KbArticle).where(
                KbArticle.family_id == article.family_id,
                KbArticle.id != article.id,
                KbArticle.live_version.is_not(None),
                KbArticle.audience == Audience.PUBLIC.value,
            )
        )
        switch = {code: f"/help/{code}" for code in _options(request).languages}
        switch.update({o.language: f"/help/{o.language}/articles/{quote(o.slug)}" for o in others})
    voter = request.cookies.get(VOTER_COOKIE) or secrets.token_urlsafe(16)
    secret = request.app[SETTINGS].secret_key.get_secret_value()
    context = _context(
        request,
        language,
        article=article,
        crumbs=_crumbs(request, nodes, article.category_id, language),
        token=vote_token(secret, voter, article.id, request.app[CLOCK].now()),
        voted=request.query.get("voted", ""),
    )
    context["switch"] = switch
    response = aiohttp_jinja2.render_template("help/article.html", request, context)
    if VOTER_COOKIE not in request.cookies:
        response.set_cookie(
            VOTER_COOKIE, voter, max_age=365 * 86400, path="/help", httponly=True, samesite="Lax"
        )
    return response


def vote_token(secret: str, voter: str, article_id: int, now: datetime) -> str:
    issued = str(int(now.timestamp()))
    return f"{issued}.{_sign(secret, voter, article_id, issued)}"


def vote_token_is_valid(
    secret: str, token: str, voter: str, article_id: int, now: datetime
) -> bool:
    issued, _, signature = token.partition(".")
    if not issued.isdigit() or not voter:
        return False
    if not hmac.compare_digest(signature, _sign(secret, voter, article_id, issued)):
        return False
    return 0 <= now.timestamp() - int(issued) <= TOKEN_LIFETIME.total_seconds()


def _sign(secret: str, voter: str, article_id: int, issued: str) -> str:
    message = f"kb-vote:{voter}:{article_id}:{issued}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def _keyed(secret: str, what: str) -> str:
    return hmac.new(secret.encode(), what.encode(), hashlib.sha256).hexdigest()[:32]


async def vote(request: web.Request) -> web.StreamResponse:
    language = _language(request)
    slug = request.match_info["slug"]
    article = await _live_article(request, language, slug)
    if article is None:
        return _not_found(request, language)
    form = await request.post()
    voter = request.cookies.get(VOTER_COOKIE, "")
    secret = request.app[SETTINGS].secret_key.get_secret_value()
    now = request.app[CLOCK].now()
    back = f"/help/{language}/articles/{quote(slug)}"
    answer = str(form.get("helpful", ""))
    token = str(form.get("token", ""))
    if answer not in ("yes", "no") or not vote_token_is_valid(
        secret, token, voter, article.id, now
    ):
        raise web.HTTPSeeOther(f"{back}?voted=again#feedback")
    try:
        async with UnitOfWork(sessions=request.app[SESSIONS], bus=request.app[BUS]) as uow:
            await record_vote(
                uow.session,
                article.id,
                voter=f"browser:{_keyed(secret, voter)}",
                helpful=answer == "yes",
                now=now,
                options=_options(request),
                origin=_keyed(secret, request.remote or ""),
                public=True,
            )
            await uow.commit()
    except DeskError:
        raise web.HTTPSeeOther(f"{back}?voted=again#feedback") from None
    raise web.HTTPSeeOther(f"{back}?voted=yes#feedback")


async def search_page(request: web.Request) -> web.Response:
    language = _language(request)
    raw = {k: v for k, v in request.query.items() if k in ("q", "page", "category")}
    try:
        query = SearchQuery.model_validate({**raw, "per_page": PER_PAGE}, strict=False)
    except ValidationError:
        query = SearchQuery(q=raw.get("q", "")[:500], per_page=PER_PAGE)
    query = query.model_copy(update={"language": language})
    page = None
    if query.q.strip():
        async with request.app[READS]() as session:
            try:
                scope = await scope_for(session, query, _public(language))
            except DeskError:  # an unknown category in an old link: search everything
                query = query.model_copy(update={"category": None})
                scope = _public(language)
            page = await search_articles(session, query, scope)

    def link(number: int) -> str:
        wanted = {"q": query.q, "category": query.category or "", "page": number}
        return f"/help/{language}/search?" + urlencode({k: v for k, v in wanted.items() if v})

    context = _context(request, language, q=query.q, results=page, page_link=link)
    context["switch"] = {
        code: f"/help/{code}/search?" + urlencode({"q": query.q}) for code in context["switch"]
    }
    return aiohttp_jinja2.render_template("help/search.html", request, context)


def _not_found(request: web.Request, language: str) -> web.Response:
    return aiohttp_jinja2.render_template(
        "help/not_found.html", request, _context(request, language), status=404
    )


ROUTES = [
    web.get("/help", choose_language),
    web.get(r"/help/{lang:[a-z]{2,3}(?:-[a-z0-9]{2,8})?}", home),
    web.get(r"/help/{lang:[a-z]{2,3}(?:-[a-z0-9]{2,8})?}/search", search_page),
    web.get(r"/help/{lang:[a-z]{2,3}(?:-[a-z0-9]{2,8})?}/categories/{slug}", category),
    web.get(r"/help/{lang:[a-z]{2,3}(?:-[a-z0-9]{2,8})?}/articles/{slug}", article_page),
    web.post(r"/help/{lang:[a-z]{2,3}(?:-[a-z0-9]{2,8})?}/articles/{slug}/vote", vote),
]

# ruff: noqa: SIM905  (word lists read best as text)
"""Knowledge base: search and pop suggestions over 100,000 articles.

Run::

    .venv/bin/python -m bench.kb [--db sqlite|postgres|both] [--articles 100000] [--runs 3]

Workload (seeded): ``--articles`` live articles, 70 % English and 30 % Chinese,
half public.  English text draws words from a Zipf-distributed vocabulary of
6,000 words (a few hundred real support words at the head, made-up words in the
tail); Chinese text from 3,000 two-character words built from common
characters, written without spaces as Chinese is.  Titles have 4-9 words,
bodies 60-220.  Rows are bulk-inserted; then the whole search index is built
with ``kb.transfer.rebuild_index`` (the figure "re-index").

Timed, each call alone with the garbage collector off, over a session of the
read engine:

* search: ``kb.search.search_articles`` (the API's and help center's path: the
  ranked page of 10, the capped count, snippets and highlights) for 300
  queries of 1-3 words taken from random articles' titles (a third Chinese,
  two-character words among them), in the article's language, live articles;
* pop: ``kb.suggestions.suggest_for_customer`` for 300 customers with 1-3 open
  tickets each (subject and a 20-60 word description) — one read of the
  tickets, one OR search over at most 8 key words, top 5 with reasons.

Per run p50 / p95 in ms; the summary is the median of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from bench.report import load_average, write_section
from desk import migrate
from desk.db import create_engine, session_factory
from desk.models import Customer, Ticket
from kb.index import Scope
from kb.records import KbArticle, KbArticleVersion, KbFamily
from kb.rendering import plain_text, render_html
from kb.search import scope_for, search_articles
from kb.shapes import SearchQuery
from kb.suggestions import suggest_for_customer
from kb.terms import query_terms
from kb.transfer import rebuild_index

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SQLITE_URL = "sqlite+aiosqlite:///var/bench/kb.db"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/calldesk_bench_kb"
SUPPORT_WORDS = """account password reset login sign email address change update delete
refund order payment card invoice billing charge subscription plan cancel upgrade
shipping delivery parcel tracking return label damaged broken replacement warehouse
router wifi internet connection slow light restart cable modem network outage
app crash update install phone android iphone notification upload file error limit
security two factor code authenticator recovery locked verify identity privacy data
export gdpr newsletter discount coupon gift voucher student family share profile
settings menu button page link screen message support ticket agent hours call back
price tax vat company business receipt statement bank transfer paypal expired
declined pending authorisation duplicate missing wrong late address customs""".split()
HAN = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定"
    "行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些"
    "然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公"
    "无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将"
    "组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金"
    "增争济阶油思术极交受联什认六共权收证改清美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八"
    "离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验"
)

Rng = random.Random


STOP_EN = """the to and a of you your is in it for on this that with be can if are we not or
as from have at by will an do my our it's i how when what""".split()
STOP_ZH = "的 了 是 在 我 您 和 有 这 个 也 就 要 可以 我们 请 如果 如何 什么 都 会 对 把".split()


def vocabulary(rng: Rng) -> tuple[list[str], list[float], list[str], list[float]]:
    """Words by rank as in real text: function words first (the index drops them),
    support words spread over the common ranks, then a long tail."""
    made_up: set[str] = set()
    syllables = ["ka", "lo", "mi", "ter", "an", "os", "ul", "ri", "ven", "dar", "pe", "sin"]
    while len(made_up) < 6000:
        made_up.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    tail = sorted(made_up)
    rng.shuffle(tail)
    english = STOP_EN + tail
    for word in SUPPORT_WORDS:
        english.insert(rng.randint(len(STOP_EN), 1500), word)
    han = sorted({rng.choice(HAN) + rng.choice(HAN) for _ in range(4000)})[:3000]
    rng.shuffle(han)
    chinese = STOP_ZH + han

    def zipf(n: int) -> list[float]:
        return [1 / (rank + 1) ** 1.05 for rank in range(n)]

    return english, zipf(len(english)), chinese, zipf(len(chinese))


class Writer:
    def __init__(self, rng: Rng) -> None:
        self.rng = rng
        self.en, self.en_w, self.zh, self.zh_w = vocabulary(rng)

    def words(self, language: str, count: int) -> str:
        if language == "zh":
            return "".join(self.rng.choices(self.zh, self.zh_w, k=count))
        return " ".join(self.rng.choices(self.en, self.en_w, k=count))

    def body(self, language: str, count: int) -> str:
        sentences, left = [], count
        while left > 0:
            n = min(left, self.rng.randint(6, 14))
            sentence = self.words(language, n)
            sentences.append(sentence + ("。" if language == "zh" else "."))
            left -= n
        return " ".join(sentences) if language == "en" else "".join(sentences)


async def seed(url: str, count: int, rng: Rng) -> tuple[list[tuple[str, str]], float]:
    """Articles and customers with open tickets; returns the titles and the re-index time."""
    writer = Writer(rng)
    engine = create_engine(url)
    sessions = session_factory(engine)
    titles: list[tuple[str, str]] = []
    batch = 2000
    for start in range(0, count, batch):
        families, articles, versions = [], [], []
        for n in range(start + 1, min(count, start + batch) + 1):
            language = "zh" if rng.random() < 0.3 else "en"
            title = writer.words(language, rng.randint(4, 9))[:200]
            body = writer.body(language, rng.randint(60, 220))
            html = render_html(body)
            audience = "public" if rng.random() < 0.5 else "internal"
            families.append({"id": n, "key": f"f{n}", "created_at": NOW})
            row = {
                "id": n, "family_id": n, "language": language, "slug": f"a{n}", "title": title,
                "summary": "", "body_md": body, "body_html": html, "body_text": plain_text(html),
                "category_id": None, "tags": [], "audience": audience, "state": "published",
                "owner_id": None, "source_ticket_id": None, "head_version": 1, "live_version": 1,
                "created_at": NOW, "updated_at": NOW, "published_at": NOW, "last_used_at": None,
                "helpful_count": 0, "unhelpful_count": 0, "link_count": 0,
            }  # fmt: skip
            articles.append(row)
            versions.append(
                {"article_id": n, "number": 1, "slug": row["slug"], "title": title,
                 "summary": "", "body_md": body, "tags": [], "category_id": None,
                 "audience": audience, "author_id": None, "created_at": NOW, "note": ""}
            )  # fmt: skip
            if rng.random() < 0.01:
                titles.append((language, title))
        async with sessions() as session:
            await session.execute(insert(KbFamily), families)
            await session.execute(insert(KbArticle), articles)
            await session.execute(insert(KbArticleVersion), versions)
            await session.commit()
    async with sessions() as session:
        customers, tickets = [], []
        for c in range(1, 301):
            customers.append(
                {"id": c, "kind": "person", "name": f"Customer {c}", "search_name": f"customer {c}",
                 "tier": "standard", "language": "en", "notes": "", "created_at": NOW,
                 "updated_at": NOW, "version": 1}
            )  # fmt: skip
            for _ in range(rng.randint(1, 3)):
                language = "zh" if rng.random() < 0.3 else "en"
                tickets.append(
                    {"subject": writer.words(language, rng.randint(3, 7))[:200],
                     "description": writer.body(language, rng.randint(20, 60)),
                     "status": rng.choice(["new", "open", "pending"]), "priority": "normal",
                     "channel": "phone", "customer_id": c, "tags": [],
                     "created_at": NOW - timedelta(hours=rng.randint(1, 500)),
                     "updated_at": NOW, "version": 1}
                )  # fmt: skip
        await session.execute(insert(Customer), customers)
        await session.execute(insert(Ticket), tickets)
        await session.commit()
    if url.startswith("postgresql"):
        async with engine.begin() as conn:
            await conn.execute(text("SELECT setval('kb_articles_id_seq', :n)"), {"n": count})
    started = time.perf_counter()
    await rebuild_index(sessions)
    reindex = time.perf_counter() - started
    if url.startswith("postgresql"):
        async with engine.connect() as conn:
            # What autovacuum does after a bulk load: rebuilding the index rewrote every row.
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
    else:
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    await engine.dispose()
    return titles, reindex


def queries(titles: list[tuple[str, str]], count: int, rng: Rng) -> list[SearchQuery]:
    """Words people would type: 1-3 consecutive title words that are not all function words."""
    out: list[SearchQuery] = []
    while len(out) < count:
        language, title = rng.choice(titles)
        if language == "zh":
            start = rng.randrange(0, max(1, len(title) - 4)) // 2 * 2
            q = title[start : start + rng.choice([2, 2, 4, 6])]
        else:
            words = title.split()
            k = rng.randint(1, min(3, len(words)))
            first = rng.randrange(0, len(words) - k + 1)
            q = " ".join(words[first : first + k])
        if query_terms(q):
            out.append(SearchQuery(q=q, language=language, per_page=10))
    return out


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def time_run(url: str, searches: list[SearchQuery]) -> dict[str, list[float]]:
    engine = create_engine(url, readers=True)
    reads = session_factory(engine)
    timings: dict[str, list[float]] = {"search": [], "pop": []}
    found = 0
    gc.disable()
    try:
        async with reads() as session:
            for query in searches:
                started = time.perf_counter()
                # As the API does it: the query's language narrows the live articles.
                page = await search_articles(
                    session, query, await scope_for(session, query, Scope())
                )
                timings["search"].append((time.perf_counter() - started) * 1000)
                found += bool(page.hits)
            for customer_id in range(1, 301):
                started = time.perf_counter()
                await suggest_for_customer(session, customer_id)
                timings["pop"].append((time.perf_counter() - started) * 1000)
    finally:
        gc.enable()
        await engine.dispose()
    timings["found"] = [found / len(searches)]
    return timings


async def recreate_postgres(url: str) -> None:
    name = make_url(url).database or ""
    if not name.replace("_", "").isalnum() or name in ("postgres", "template1"):
        raise SystemExit(f"refusing to recreate database {name!r}")
    admin = create_engine(str(make_url(url).set(database="postgres")))
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()


def prepare(backend: str, url: str) -> None:
    if backend == "sqlite":
        path = Path(make_url(url).database or "")
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        asyncio.run(recreate_postgres(url))
    migrate.upgrade(url)


def bench_backend(backend: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    prepare(backend, url)
    started = time.perf_counter()
    titles, reindex = asyncio.run(seed(url, args.articles, rng))
    print(f"{backend}: seeded {args.articles} articles in {time.perf_counter() - started:.0f} s; "
          f"re-index {reindex:.1f} s")  # fmt: skip
    searches = queries(titles, 300, rng)
    asyncio.run(time_run(url, searches[:50]))  # warm-up: caches, statement cache
    runs: dict[str, list[tuple[float, float]]] = {"search": [], "pop": []}
    for run in range(1, args.runs + 1):
        timings = asyncio.run(time_run(url, searches))
        parts = []
        for name in ("search", "pop"):
            p50, p95 = percentile(timings[name], 0.5), percentile(timings[name], 0.95)
            runs[name].append((p50, p95))
            parts.append(f"{name} p50 {p50:.2f} / p95 {p95:.2f} / max {max(timings[name]):.1f} ms")
        print(f"{backend} run {run}: " + "; ".join(parts) + f"; {timings['found'][0]:.0%} found")
    return {
        name: (
            statistics.median(p50 for p50, _ in values),
            statistics.median(p95 for _, p95 in values),
        )
        for name, values in runs.items()
    } | {"reindex": reindex}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--postgres-url", default=os.environ.get("DESK_BENCH_KB_URL", DEFAULT_PG_URL)
    )
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    lines = []
    for backend in backends:
        url = SQLITE_URL if backend == "sqlite" else args.postgres_url
        result = bench_backend(backend, url, args)
        (s50, s95), (p50, p95) = result["search"], result["pop"]
        search_target = " (target ≤ 10 ms: " + ("met)" if s95 <= 10 else "NOT met)")
        line = (
            f"{backend}, median of {args.runs} runs: search p50 {s50:.2f} ms, p95 {s95:.2f} ms"
            + (search_target if backend == "sqlite" else "")
            + f"; pop suggestions p50 {p50:.2f} ms, p95 {p95:.2f} ms (target ≤ 5 ms: "
            + ("met" if p95 <= 5 else "NOT met")
            + f"); re-index of {args.articles:,} articles {result['reindex']:.1f} s"
        )
        print(line)
        lines.append(f"- {line}")
    if args.write_docs:
        load = load_average()
        section = (
            f"`python -m bench.kb --articles {args.articles} --runs {args.runs}` on "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; nproc {os.cpu_count()}, load average "
            f"{load}. {args.articles:,} live articles (70 % English, 30 % Chinese); 300 searches "
            "of 1-3 title words through `search_articles` (page of 10, capped count, snippets); "
            "300 screen pops through `suggest_for_customer` (1-3 open tickets each).\n\n"
            + "\n".join(lines)
            + "\n"
        )
        write_section(key="kb", title="Knowledge base", section=section)


if __name__ == "__main__":
    main()

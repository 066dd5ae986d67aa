"""A folder of Markdown files in and out: per-file problems, translations, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from desk.clock import FakeClock
from kb.articles import translations
from kb.folder import FileProblem, parse_article
from kb.history import versions
from kb.options import KbOptions
from kb.records import KbArticle, KbCategory
from kb.transfer import export_folder, import_folder, rebuild_index
from tests.conftest import Database

CATEGORIES = """\
- slug: account
  names: {en: Account, zh: 账户}
- slug: passwords
  parent: account
  names: {en: Passwords, zh: 密码}
"""
ENGLISH = """\
---
title: Reset your password
slug: reset-your-password
language: en
summary: Set a new one from the sign-in page.
category: passwords
tags: [password, sign-in]
audience: public
state: published
translation_key: reset-password
---
Open the sign-in page and choose **Forgot password**.
"""
CHINESE = """\
---
title: 如何重置密码
slug: 重置密码
language: zh
category: passwords
audience: public
state: published
translation_key: reset-password
---
在登录页面点击“忘记密码”。
"""


def _folder(tmp_path: Path, files: dict[str, bytes | str]) -> Path:
    folder = tmp_path / "articles"
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return folder


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"no front matter", "no front matter"),
        (b"---\ntitle: x\n", "no closing '---'"),
        (b"---\ntitle: [unclosed\n---\nbody", "not valid YAML on line"),
        (b"---\ntitle: ok\ncolour: red\n---\n", "colour: Extra inputs are not permitted"),
        (b"---\nslug: x\n---\n", "title: Field required"),
        (b"---\ntitle: ok\nslug: Not A Slug!\n---\n", "slug: Value error"),
        (b"---\ntitle: Caf\xe9\n---\n", "not UTF-8: byte 0xe9 on line 2"),
        (b"---\ntitle: big\n---\n" + b"x" * 500_000, "more than the"),
        (b"---\ntitle: ok\nbody: no\n---\n", "'body' is not a front-matter key"),
    ],
)
def test_a_bad_file_is_refused_with_a_one_line_reason(raw: bytes, problem: str) -> None:
    with pytest.raises(FileProblem, match=problem.replace("[", r"\[").replace("(", r"\(")):
        parse_article(raw)


def test_numbers_and_a_byte_order_mark_are_read_as_text() -> None:
    parsed = parse_article("\ufeff---\ntitle: 404\ntags: [2024, wifi]\n---\nBody\n".encode())
    assert (parsed.title, parsed.tags, parsed.body) == ("404", ["2024", "wifi"], "Body")


async def test_a_folder_is_imported_with_categories_translations_and_per_file_problems(
    database: Database, clock: FakeClock, options: KbOptions, tmp_path: Path
) -> None:
    folder = _folder(
        tmp_path,
        {
            "categories.yaml": CATEGORIES,
            "en/reset.md": ENGLISH,
            "zh/reset.md": CHINESE,
            "broken/latin1.md": b"---\ntitle: Caf\xe9\n---\n",
            "zz-copy.md": ENGLISH.replace("Reset your password", "Copy"),
            "broken/no-category.md": "---\ntitle: Lost\ncategory: nowhere\n---\n",
            "broken/script.md": "---\ntitle: Tricky\n---\n<script>alert(1)</script>\n",
        },
    )
    done: list[int] = []
    report = await import_folder(
        database.sessions, folder, now=clock.now(), options=options, on_progress=done.append
    )
    assert (report.created, report.updated, report.unchanged) == (3, 0, 0)
    assert dict(report.problems) == {
        "broken/latin1.md": "not UTF-8: byte 0xe9 on line 2; save the file as UTF-8",
        "broken/no-category.md": "no category 'nowhere' (add it to categories.yaml)",
        "zz-copy.md": "slug 'reset-your-password' (en) is also in en/reset.md",
    }
    assert done == [1, 2, 3, 4, 5, 6]
    async with database.sessions() as session:
        english = await session.scalar(select(KbArticle).where(KbArticle.language == "en"))
        tricky = await session.scalar(select(KbArticle).where(KbArticle.title == "Tricky"))
        passwords = await session.scalar(select(KbCategory).where(KbCategory.slug == "passwords"))
        assert english is not None and tricky is not None and passwords is not None
        assert (english.state, english.category_id, english.tags) == (
            "published",
            passwords.id,
            ["password", "sign-in"],
        )
        assert [t.slug for t in await translations(session, english)] == ["重置密码"]
        assert "<script>" not in tricky.body_html and "&lt;script&gt;" in tricky.body_html


async def test_importing_the_same_folder_again_changes_nothing_and_an_edit_is_a_new_version(
    database: Database, clock: FakeClock, options: KbOptions, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, {"categories.yaml": CATEGORIES, "en/reset.md": ENGLISH})
    await import_folder(database.sessions, folder, now=clock.now(), options=options)
    again = await import_folder(database.sessions, folder, now=clock.now(), options=options)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    (folder / "en/reset.md").write_text(ENGLISH.replace("**Forgot password**", "*Forgot*"))
    edited = await import_folder(database.sessions, folder, now=clock.now(), options=options)
    assert (edited.created, edited.updated) == (0, 1)
    async with database.sessions() as session:
        article = await session.scalar(select(KbArticle))
        assert article is not None
        assert (article.state, article.live_version, article.body_md) == (
            "published",
            2,
            "Open the sign-in page and choose *Forgot*.",
        )
        assert [v.note for v in await versions(session, article.id)] == [
            "imported from en/reset.md",
            "created",
        ]


async def test_an_exported_folder_imports_into_an_empty_desk_as_the_same_articles(
    database: Database, clock: FakeClock, options: KbOptions, tmp_path: Path
) -> None:
    source = _folder(
        tmp_path, {"categories.yaml": CATEGORIES, "en/a.md": ENGLISH, "zh/b.md": CHINESE}
    )
    await import_folder(database.sessions, source, now=clock.now(), options=options)
    exported = tmp_path / "exported"
    assert await export_folder(database.sessions, exported) == 2
    assert sorted(str(p.relative_to(exported)) for p in exported.rglob("*.*")) == [
        "categories.yaml",
        "en/reset-your-password.md",
        "zh/重置密码.md",
    ]
    assert (exported / "en/reset-your-password.md").read_text() == ENGLISH
    async with database.sessions() as session:
        for table in (KbArticle, KbCategory):
            for row in await session.scalars(select(table)):
                await session.delete(row)
        await session.commit()
    report = await import_folder(database.sessions, exported, now=clock.now(), options=options)
    assert (report.created, report.problems) == (2, [])
    async with database.sessions() as session:
        english = await session.scalar(select(KbArticle).where(KbArticle.language == "en"))
        assert english is not None
        assert [t.language for t in await translations(session, english)] == ["zh"]


async def test_rebuilding_the_index_finds_the_same_articles(
    database: Database, clock: FakeClock, options: KbOptions, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, {"categories.yaml": CATEGORIES, "zh/b.md": CHINESE})
    await import_folder(database.sessions, folder, now=clock.now(), options=options)
    assert await rebuild_index(database.sessions) == 1
    async with database.sessions() as session:
        from kb.index import Scope, find

        hits = await find(session, [("重置",)], Scope())
    assert hits.total == 1


def test_the_desk_command_imports_a_folder_and_lists_the_files_it_refused(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from web.cli import cli

    folder = _folder(
        tmp_path,
        {"categories.yaml": CATEGORIES, "en/reset.md": ENGLISH, "bad.md": b"\xff\xfe"},
    )
    monkeypatch.setenv("DESK_DATABASE_URL", database.url)
    monkeypatch.setenv("DESK_MODE", "test")
    monkeypatch.setenv("DESK_SECRET_KEY", "test-secret-key-0123456789abcdef0123456789")
    result = CliRunner().invoke(cli, ["kb", "import", str(folder)])
    assert result.exit_code == 1, result.output
    assert f"{folder}: 2 files, 1 created, 0 updated, 0 unchanged, 1 refused" in result.output
    assert "bad.md: not UTF-8: byte 0xff on line 1" in result.output
    exported = CliRunner().invoke(cli, ["kb", "export", str(tmp_path / "out")])
    assert exported.exit_code == 0, exported.output
    assert "1 articles written" in exported.output

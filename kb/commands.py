"""``desk kb import DIR``, ``desk kb export DIR`` and ``desk kb reindex``.

Registered on the ``desk`` command by web.cli (desk may not import kb).  Exit
codes as for every desk command: 0 done, 1 some files refused (each listed
with its problem), 2 a fatal error on one line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from sqlalchemy import func, select

from desk.cli import FatalError, _database, cli_settings, run
from desk.clock import SystemClock
from desk.settings import Settings
from kb.options import KbOptions
from kb.records import KbArticle
from kb.transfer import FolderReport, article_files, export_folder, import_folder, rebuild_index


@click.group("kb")
def kb_group() -> None:
    """Knowledge base: import and export articles, rebuild the search index."""


async def _import(settings: Settings, folder: Path, total: int) -> FolderReport:
    async with _database(settings) as sessions:
        with click.progressbar(length=total, label="Importing", file=sys.stderr) as bar:
            done = 0

            def progress(files: int) -> None:
                nonlocal done
                bar.update(files - done)
                done = files

            return await import_folder(
                sessions, folder, now=SystemClock().now(), options=KbOptions(), on_progress=progress
            )


@kb_group.command("import")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def import_command(ctx: click.Context, folder: Path) -> None:
    """Import Markdown articles (YAML front matter) from FOLDER and its sub-folders."""
    if not folder.is_dir():
        raise FatalError(f"{folder} is not a folder")
    settings = cli_settings()
    total = len(article_files(folder))
    report = run(_import(settings, folder, total))
    click.echo(
        f"{folder}: {total} files, {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged, {len(report.problems)} refused"
    )
    for name, problem in report.problems:
        click.echo(f"{name}: {problem}")
    ctx.exit(0 if report.ok else 1)


async def _export(settings: Settings, folder: Path) -> int:
    async with _database(settings) as sessions:
        async with sessions() as session:
            total = await session.scalar(select(func.count()).select_from(KbArticle)) or 0
        with click.progressbar(length=total, label="Exporting", file=sys.stderr) as bar:
            return await export_folder(sessions, folder, on_progress=lambda _n: bar.update(1))


@kb_group.command("export")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def export_command(folder: Path) -> None:
    """Write every article to FOLDER/<language>/<slug>.md, and the categories."""
    settings = cli_settings()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FatalError(f"cannot write to {folder}: {exc.strerror}") from None
    written = run(_export(settings, folder))
    click.echo(f"{folder}: {written} articles written")


async def _reindex(settings: Settings) -> int:
    async with _database(settings) as sessions:
        return await rebuild_index(sessions)


@kb_group.command("reindex")
def reindex_command() -> None:
    """Rebuild the search index from the articles."""
    count = run(_reindex(cli_settings()))
    click.echo(f"search index rebuilt: {count} articles")

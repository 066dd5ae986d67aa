"""The survey e-mail (pure): plain text and HTML, the five CSAT faces as links.

Each face links to ``<link>?csat=<n>``: opening it records that score at once
and offers the optional questions.  Without a CSAT question the e-mail carries
one "open the survey" link.  Every value that came from people (names,
subjects) is escaped in the HTML part.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape

from desk.survey_wording import FACES, survey_words


@dataclass(frozen=True, kw_only=True)
class SurveyMail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, kw_only=True)
class MailFacts:
    """What the e-mail says: whom it greets and what it is about."""

    language: str
    customer_name: str
    link: str  # <base>/s/<token>
    expires_at: datetime
    ticket_id: int | None = None
    ticket_subject: str = ""
    one_click: bool = True  # the template asks CSAT: the faces record it


def face_link(link: str, score: int) -> str:
    return f"{link}?csat={score}"


def opt_out_link(link: str) -> str:
    return f"{link}/opt-out"


def survey_mail(facts: MailFacts) -> SurveyMail:
    t = survey_words(facts.language)
    name = " ".join(facts.customer_name.split())[:100]
    subject_line = " ".join(facts.ticket_subject.split())[:150]
    if facts.ticket_id is not None:
        subject = t["mail_subject_ticket"].format(ticket=facts.ticket_id)
        intro = t["mail_intro_ticket"].format(ticket=facts.ticket_id, subject=subject_line)
    else:
        subject = t["mail_subject_call"]
        intro = t["mail_intro_call"]
    greeting = t["mail_greeting"].format(name=name)
    expires = t["mail_expires"].format(date=facts.expires_at.strftime("%Y-%m-%d"))
    scores = range(1, 6)
    lines = [greeting, "", intro, ""]
    if facts.one_click:
        lines += [t["mail_ask"], ""]
        lines += [
            f"  {FACES[n - 1]} {t[f'csat_{n}']}: {face_link(facts.link, n)}"
            for n in reversed(scores)
        ]
    else:
        lines += [f"{t['mail_open']}: {facts.link}"]
    lines += ["", expires, "", f"{t['mail_opt_out']} {opt_out_link(facts.link)}"]

    if facts.one_click:
        cells = "".join(
            f'<td style="padding:4px;text-align:center">'
            f'<a href="{escape(face_link(facts.link, n))}" title="{escape(t[f"csat_{n}"])}" '
            f'style="font-size:36px;text-decoration:none">{FACES[n - 1]}</a><br>'
            f"<small>{escape(t[f'csat_{n}'])}</small></td>"
            for n in scores
        )
        action = (
            f'<p>{escape(t["mail_ask"])}</p><table role="presentation"><tr>{cells}</tr></table>'
        )
    else:
        action = f'<p><a href="{escape(facts.link)}">{escape(t["mail_open"])}</a></p>'
    html = (
        f'<!doctype html><html lang="{escape(facts.language)}"><body '
        f'style="font-family:system-ui,sans-serif;font-size:16px">'
        f"<p>{escape(greeting)}</p><p>{escape(intro)}</p>{action}"
        f"<p><small>{escape(expires)}</small></p>"
        f"<p><small>{escape(t['mail_opt_out'])} "
        f'<a href="{escape(opt_out_link(facts.link))}">{escape(t["opt_out_button"])}</a>'
        f"</small></p></body></html>"
    )
    return SurveyMail(subject=subject, text="\n".join(lines) + "\n", html=html)

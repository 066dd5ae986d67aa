# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""The words of the customer pages, in English and Simplified Chinese.

The language comes from ``?lang=``, else the browser's Accept-Language, else English.
"""

from __future__ import annotations

from aiohttp import web

LANGUAGES = ("en", "zh")

_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Contact us",
        "intro": "Tell us what happened and we will get back to you.",
        "name": "Your name",
        "email": "E-mail",
        "phone": "Phone (optional)",
        "subject": "Subject",
        "description": "What can we help with?",
        "send": "Send",
        "sent_title": "Thank you",
        "sent_body": "Your request is with us. Its number is",
        "sent_plain": "Your request is with us.",
        "sent_next": "We will answer by e-mail.",
        "expired": "This form has expired; please send it again.",
        "bad_form": "Please check this field.",
        "bad_name": "Please tell us your name.",
        "bad_email": "Please enter an e-mail address we can answer to.",
        "bad_phone": "Please enter a phone number we can call back, or leave it empty.",
        "bad_subject": "Please give your request a short subject.",
        "bad_description": "Please describe what happened.",
        "problems": "Some fields need a second look.",
    },
    "zh": {
        "title": "联系我们",
        "intro": "请告诉我们发生了什么，我们会尽快回复您。",
        "name": "您的姓名",
        "email": "电子邮箱",
        "phone": "电话（可选）",
        "subject": "主题",
        "description": "我们能帮您什么？",
        "send": "提交",
        "sent_title": "谢谢",
        "sent_body": "我们已收到您的请求，编号为",
        "sent_plain": "我们已收到您的请求。",
        "sent_next": "我们会通过电子邮件回复您。",
        "expired": "表单已过期，请重新提交。",
        "bad_form": "请检查此项。",
        "bad_name": "请填写您的姓名。",
        "bad_email": "请填写可以回复的电子邮箱。",
        "bad_phone": "请填写可以回拨的电话号码，或留空。",
        "bad_subject": "请填写简短的主题。",
        "bad_description": "请描述发生了什么。",
        "problems": "有些内容需要再检查一下。",
    },
}


def wording(language: str) -> dict[str, str]:
    return _WORDS.get(language, _WORDS["en"])


def language_of(request: web.Request) -> str:
    asked = request.query.get("lang", "")
    if asked in LANGUAGES:
        return asked
    for tag in _by_preference(request.headers.get("Accept-Language", "")):
        if tag[:2] in LANGUAGES:
            return tag[:2]
    return "en"


def _by_preference(header: str) -> list[str]:
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag:
            ranked.append((-weight, position, tag.strip().lower()))
    return [tag for _, _, tag in sorted(ranked)]

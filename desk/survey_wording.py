# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""The words of surveys — the e-mail and the page — in English and Simplified Chinese.

The e-mail is written when the survey is triggered (desk), the page when it is
opened (web); both read from here so they say the same thing.
"""

from __future__ import annotations

LANGUAGES = ("en", "zh")
# The five CSAT faces, worst first; also the text of the e-mail's links.
FACES = ("😠", "🙁", "😐", "🙂", "😄")

_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "mail_subject_ticket": "How did we do? (request #{ticket})",
        "mail_subject_call": "How did we do on your call?",
        "mail_greeting": "Hello {name},",
        "mail_intro_ticket": "we have solved your request #{ticket} “{subject}”.",
        "mail_intro_call": "thank you for calling us.",
        "mail_ask": "How satisfied are you with our help? One tap is enough:",
        "mail_open": "Open the survey",
        "mail_expires": "The link works until {date}.",
        "mail_opt_out": "Prefer not to get these questions?",
        "csat_1": "Very unhappy",
        "csat_2": "Unhappy",
        "csat_3": "Neutral",
        "csat_4": "Happy",
        "csat_5": "Very happy",
        "title": "How did we do?",
        "about_ticket": "About your request #{ticket}: {subject}",
        "about_call": "About your call on {date}",
        "recorded": "Thank you — we have recorded your answer.",
        "more": "A few more questions, all optional:",
        "nps_low": "Not at all likely",
        "nps_high": "Extremely likely",
        "ces_low": "Very hard",
        "ces_high": "Very easy",
        "yes": "Yes",
        "no": "No",
        "send": "Send",
        "save": "Save changes",
        "editable_until": "You can change your answer until {time}.",
        "final": "Your answer is final.",
        "your_answer": "Your answer",
        "thanks_title": "Thank you!",
        "thanks_body": "Your answer helps us get better.",
        "thanks_follow_up": "We are sorry it did not go well; someone will look into it.",
        "problems": "Some answers need a second look.",
        "bad_required": "Please answer this question.",
        "bad_value": "Please choose one of the options.",
        "bad_long": "Please keep it shorter (at most {limit} characters).",
        "gone_title": "This survey link does not work",
        "gone_invalid": "The link is not complete or not valid. Please use the link "
        "from the e-mail as it is.",
        "gone_expired": "This survey has expired. Thank you all the same!",
        "gone_withdrawn": "This survey is no longer needed — your request is open again.",
        "too_late": "This answer can no longer be changed.",
        "opt_out_title": "No more surveys?",
        "opt_out_ask": "We will not send you satisfaction surveys any more.",
        "opt_out_button": "Stop surveys",
        "opt_out_done": "Done — you will not get surveys from us any more.",
    },
    "zh": {
        "mail_subject_ticket": "我们的服务如何？（请求 #{ticket}）",
        "mail_subject_call": "您对这次通话满意吗？",
        "mail_greeting": "{name}，您好：",
        "mail_intro_ticket": "您的请求 #{ticket}“{subject}”已处理完毕。",
        "mail_intro_call": "感谢您的来电。",
        "mail_ask": "您对我们的帮助满意吗？点一下即可：",
        "mail_open": "打开问卷",
        "mail_expires": "链接在 {date} 之前有效。",
        "mail_opt_out": "不想再收到此类问卷？",
        "csat_1": "非常不满意",
        "csat_2": "不满意",
        "csat_3": "一般",
        "csat_4": "满意",
        "csat_5": "非常满意",
        "title": "我们的服务如何？",
        "about_ticket": "关于您的请求 #{ticket}：{subject}",
        "about_call": "关于您在 {date} 的来电",
        "recorded": "谢谢！我们已记录您的回答。",
        "more": "还有几个问题，均为可选：",
        "nps_low": "完全不可能",
        "nps_high": "非常可能",
        "ces_low": "非常困难",
        "ces_high": "非常容易",
        "yes": "是",
        "no": "否",
        "send": "提交",
        "save": "保存修改",
        "editable_until": "在 {time} 之前您可以修改回答。",
        "final": "您的回答已确定。",
        "your_answer": "您的回答",
        "thanks_title": "谢谢！",
        "thanks_body": "您的回答帮助我们做得更好。",
        "thanks_follow_up": "很抱歉让您失望了，我们会有专人跟进。",
        "problems": "有些回答需要再检查一下。",
        "bad_required": "请回答此问题。",
        "bad_value": "请选择一个选项。",
        "bad_long": "请写得简短一些（最多 {limit} 个字符）。",
        "gone_title": "此问卷链接无法使用",
        "gone_invalid": "链接不完整或无效，请直接使用邮件中的链接。",
        "gone_expired": "此问卷已过期，仍然感谢您！",
        "gone_withdrawn": "此问卷已不再需要——您的请求已重新打开。",
        "too_late": "此回答已无法修改。",
        "opt_out_title": "不再接收问卷？",
        "opt_out_ask": "我们将不再向您发送满意度问卷。",
        "opt_out_button": "停止发送问卷",
        "opt_out_done": "已完成——我们将不再向您发送问卷。",
    },
}


def survey_language(preferred: str | None) -> str:
    """One of ``LANGUAGES`` for a customer's language (``zh-CN`` → ``zh``), else English."""
    tag = (preferred or "").strip().lower()[:2]
    return tag if tag in LANGUAGES else "en"


def survey_words(language: str) -> dict[str, str]:
    return _WORDS.get(language, _WORDS["en"])

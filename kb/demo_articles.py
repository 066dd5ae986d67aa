# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""A handful of demo articles, English and Chinese, so the demo's help center and
pops have something to show.  Seeded by ``desk demo`` (web.cli); idempotent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kb.articles import add_translation, change_state, create_article
from kb.categories import create_category
from kb.options import KbOptions
from kb.records import ArticleState, Audience, KbArticle
from kb.shapes import ArticleDraft, CategoryDraft, TransitionIn, TranslationDraft

CATEGORIES = (
    ("account", {"en": "Account and sign-in", "zh": "账户与登录"}),
    ("billing", {"en": "Billing and refunds", "zh": "账单与退款"}),
    ("internet", {"en": "Internet and router", "zh": "网络与路由器"}),
)
# (category, English title, body, Chinese title, body, audience)
ARTICLES = (
    ("account", "Reset your password",
     "1. Open the sign-in page and choose **Forgot password**.\n"
     "2. Enter your e-mail address; the link we send works for 30 minutes.\n"
     "3. Choose a new password of at least 10 characters.",
     "如何重置您的账户密码",
     "1. 在登录页面点击“忘记密码”。\n2. 输入您的电子邮箱，重置链接30分钟内有效。\n"
     "3. 设置至少10个字符的新密码。", Audience.PUBLIC),
    ("account", "Turn on two-factor authentication",
     "Open **Settings > Security**, choose *Two-factor authentication* and scan the QR "
     "code with an authenticator app. Keep the recovery codes somewhere safe.",
     "开启两步验证",
     "进入“设置 > 安全”，开启两步验证并用身份验证器扫描二维码。请妥善保存恢复码。",
     Audience.PUBLIC),
    ("billing", "How long does a refund take?",
     "Card refunds reach your account within 5 to 10 business days, PayPal within 24 hours.",
     "退款多久到账",
     "银行卡退款一般在5到10个工作日内到账，支付宝和微信支付通常在24小时内到账。",
     Audience.PUBLIC),
    ("billing", "I was charged twice",
     "A second charge is usually a pending authorisation that the bank releases within "
     "3 to 5 days. If both are final, we refund the duplicate at once.",
     "重复扣款怎么办",
     "重复扣款通常是银行预授权，3到5天内会自动解冻。如果两笔都已完成，我们会立即退还。",
     Audience.PUBLIC),
    ("internet", "The router shows a red light",
     "A red internet light means no connection. Unplug the router for 30 seconds, check "
     "the DSL cable, then look at the service status page for outages.",
     "路由器亮红灯无法上网",
     "互联网指示灯亮红灯表示无法连接。请拔掉电源30秒后重启，并检查宽带线是否插紧。",
     Audience.PUBLIC),
    ("billing", "Goodwill credits: what agents may offer",
     "Agents may credit up to 10 euros without approval; more needs a supervisor. "
     "Note the credit on the ticket.",
     "补偿额度说明（内部）",
     "客服可直接补偿不超过10欧元，超过需主管批准，并在工单中注明。",
     Audience.INTERNAL),
)  # fmt: skip


async def seed_demo_articles(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime, options: KbOptions
) -> int:
    """Publish the demo articles and their translations; nothing if articles exist."""
    async with sessions() as session:
        if await session.scalar(select(func.count()).select_from(KbArticle)):
            return 0
        categories = {}
        for slug, names in CATEGORIES:
            draft = CategoryDraft(slug=slug, names=names)
            categories[slug] = (await create_category(session, draft, now=now, options=options)).id
        count = 0
        for category, title, body, zh_title, zh_body, audience in ARTICLES:
            english = await create_article(
                session,
                ArticleDraft(title=title, body=body, category_id=categories[category],
                             audience=audience),
                actor=None, now=now, options=options,
            )  # fmt: skip
            chinese = await add_translation(
                session,
                english.id,
                TranslationDraft(language="zh", title=zh_title, body=zh_body),
                actor=None,
                now=now,
                options=options,
            )
            for article in (english, chinese):
                wanted = TransitionIn(to=ArticleState.PUBLISHED, version=1, note="demo")
                await change_state(session, article.id, wanted, actor=None, now=now)
                count += 1
        await session.commit()
        return count

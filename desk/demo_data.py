"""Demo data: the agents of the bundled PBX, a supervisor, an admin and ~200 customers.

Every demo account has the password ``demo1234`` (``DEMO_PASSWORD``).  This is
for demo mode only: never seed a production desk.

* teams "Support" (lead alice) and "Sales" (lead carol);
* agents alice/bob/carol/dave on extensions 1001..1004 (``PJSIP/1001``..``PJSIP/1004``):
  alice and bob in Support with skill "support", carol and dave in Sales with
  skill "sales", matching ``queues.conf`` of the recorded PBX;
* supervisor ``sam`` and admin ``admin``;
* ``DEMO_CUSTOMERS`` customers, generated from a fixed seed so every run gives
  the same people: organisations with their staff and private persons, German,
  Chinese, English and French names, mixed tiers, tags and e-mail addresses at
  reserved example domains.  Numbers are stored as people type them (``+49 30
  ...``, ``0049 ...``, ``030-...``, ``(030) ...``), including US, UK and French
  ones, so the demo shows that pops match whatever the format;
* the callers of the AMI recordings, so every recorded call pops a customer:
  Erika Mustermann (platinum, +4930123456789), +4930555000111, +493099887766
  (the recording sends it nationally as 03099887766), +14155550100,
  +33142685300, the click-to-call callee +4940987654, +4930123450001 and the
  queue_burst callers +493011100001..+493011100006;
* ``SHARED_NUMBER``, one number two customers share, to show the choice
  between candidates.

Seeding is idempotent: teams and users are found by name, customers by name
plus first number, and whatever exists is left as it is.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import datetime

import phonenumbers
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from desk.customer_import import normalise_name, phone_owners
from desk.customers import CustomerDraft, EmailIn, PhoneIn, create_customer
from desk.events import EventBus, UnitOfWork
from desk.models import CustomerKind, Role, Team, Tier, User
from desk.phones import read_number
from desk.users import AgentIn, SkillIn, TeamDraft, UserDraft, create_team, create_user

DEMO_PASSWORD = "demo1234"
DEMO_CUSTOMERS = 200
SHARED_NUMBER = "+493070080090"
_SEED = 20260105


@dataclass(frozen=True, slots=True)
class DemoUser:
    username: str
    display_name: str
    role: Role
    extension: str | None = None
    team: str | None = None
    lead: bool = False


DEMO_USERS = (
    DemoUser("alice", "Alice", Role.AGENT, "1001", "Support", lead=True),
    DemoUser("bob", "Bob", Role.AGENT, "1002", "Support"),
    DemoUser("carol", "Carol", Role.AGENT, "1003", "Sales", lead=True),
    DemoUser("dave", "Dave", Role.AGENT, "1004", "Sales"),
    DemoUser("sam", "Sam Supervisor", Role.SUPERVISOR),
    DemoUser("admin", "Administrator", Role.ADMIN),
)
TEAM_SKILLS = {"Support": "support", "Sales": "sales"}


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    name: str
    phones: tuple[str, ...]
    kind: CustomerKind = CustomerKind.PERSON
    tier: Tier = Tier.STANDARD
    language: str = "en"
    emails: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    notes: str = ""
    organisation: str | None = None


@dataclass(frozen=True, slots=True)
class DemoSummary:
    teams_created: int
    users_created: int
    customers_created: int
    usernames: tuple[str, ...] = field(default=tuple(u.username for u in DEMO_USERS))


# The recorded callers, each stored in a different format than the PBX sends.
RECORDING_CALLERS = (
    DemoCustomer(
        "Mustermann Consulting GmbH",
        ("+49 30 1234 5670",),
        CustomerKind.ORGANISATION,
        Tier.PLATINUM,
        "de",
        ("info@mustermann-consulting.example",),
        ("b2b",),
    ),
    DemoCustomer(
        "Erika Mustermann",
        ("+49 (30) 123 456 789",),
        tier=Tier.PLATINUM,
        language="de",
        emails=("erika.mustermann@mustermann-consulting.example",),
        tags=("vip",),
        notes="Managing director. Prefers German.",
        organisation="Mustermann Consulting GmbH",
    ),
    DemoCustomer(
        "Hans Wartend",
        ("0049 30 555 000 111",),
        language="de",
        emails=("hans.wartend@example.de",),
        tags=("callback",),
    ),
    DemoCustomer(
        "Max Power",
        ("+49 30 99887766",),
        tier=Tier.GOLD,
        language="de",
        emails=("max.power@example.de",),
        tags=("prospect",),
    ),
    DemoCustomer(
        "Pat Jones", ("+1 (415) 555-0100",), tier=Tier.GOLD, emails=("pat.jones@example.com",)
    ),
    DemoCustomer(
        "Jeanne Dupont",
        ("+33 1 42 68 53 00",),
        language="fr",
        emails=("jeanne.dupont@example.fr",),
        tags=("newsletter",),
    ),
    DemoCustomer(
        "Nordlicht Logistik GmbH",
        ("040 / 987654",),
        CustomerKind.ORGANISATION,
        Tier.GOLD,
        "de",
        ("dispo@nordlicht-logistik.example",),
        ("b2b", "key-account"),
    ),
    DemoCustomer(
        "Greta Frühling",
        ("+49-30-123450001",),
        language="de",
        emails=("greta.fruehling@example.de",),
    ),
    DemoCustomer("Lukas Becker", ("+49 30 111 000 01",), language="de"),
    DemoCustomer("Wang Fang", ("0049 (30) 11100002",), language="zh", tags=("reseller",)),
    DemoCustomer("Oliver Smith", ("+493011100003",), tier=Tier.GOLD),
    DemoCustomer("Sabine Wolf", ("030 111 000 04",), language="de", tags=("complaint",)),
    DemoCustomer("李伟", ("+49 30 1110 0005",), language="zh"),
    DemoCustomer("Emma Taylor", ("(030) 11100006",), emails=("emma.taylor@example.co.uk",)),
    # Two people at one landline: a call from it offers both as candidates.
    DemoCustomer("Thomas Schneider", ("+49 30 70080090",), language="de"),
    DemoCustomer("Anna Schneider", ("030-7008-0090",), language="de", tags=("newsletter",)),
)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_FIRST = {
    "de": _words("Lukas Anna Jonas Lea Felix Sophie Jürgen Ursula Sören Katrin Dieter Brigitte"),
    "zh": _words("Wei Fang Na Min Jing Lei Yan Jun Xiuying Hao"),
    "en": _words("Oliver Emma James Olivia George Amelia Harry Isla Jack"),
    "fr": _words("Camille Louis Chloé Hugo Léa Théo"),
}
_LAST = {
    "de": _words(
        "Müller Schmidt Fischer Weber Meyer Wagner Schulz Hoffmann Koch Richter Schröder "
        "Neumann Zimmermann Krüger Weiß Groß"
    ),
    "zh": _words("Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou"),
    "en": _words("Smith Jones Taylor Brown Wilson Davies Evans Walker"),
    "fr": _words("Martin Bernard Dubois Moreau Laurent Lefèvre"),
}
# Names in characters, with the pinyin their owners use for e-mail.
_HANZI = {"王芳": "wang.fang", "张伟": "zhang.wei", "刘洋": "liu.yang", "陈静": "chen.jing"}
_ORGS = {
    "de": ("{} Maschinenbau GmbH", "{} Logistik AG", "{} & Söhne KG", "{} Bau GmbH"),
    "zh": ("Shenzhen {} Electronics Co., Ltd.", "Hangzhou {} Trading Co., Ltd."),
    "en": ("{} Supplies Ltd", "{} & Partners LLP", "{} Software Inc."),
    "fr": ("{} et Fils SARL",),
}
# Where each nationality's numbers come from: (region, national prefix, digits to add).
# UK and US numbers stay inside the ranges reserved for fiction (020 7946 0xxx, 555-01xx).
_NUMBERING: dict[str, tuple[tuple[str, str, int], ...]] = {
    "de": (("DE", "30", 8), ("DE", "40", 8), ("DE", "89", 8), ("DE", "151", 8), ("DE", "176", 8)),
    "zh": (("CN", "10", 8), ("CN", "21", 8), ("CN", "138", 8)),
    "en": (
        ("GB", "2079460", 3),
        ("GB", "1614960", 3),
        ("US", "21255501", 2),
        ("US", "41555501", 2),
    ),
    "fr": (("FR", "1", 8), ("FR", "6", 8)),
}
_LANGUAGES = ("de",) * 9 + ("zh",) * 4 + ("en",) * 5 + ("fr",) * 2
_TAGS = ("newsletter", "prospect", "complaint", "callback", "reseller", "vip", "key-account")
_NOTES = ("", "", "", "Prefers e-mail.", "Call back in the morning only.")
_DOMAINS = ("example.com", "example.de", "example.org", "example.net")


def _ascii(text: str) -> str:
    text = text.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


class _Generator:
    """Deterministic fake people and numbers; one instance per generated list."""

    def __init__(self, region: str) -> None:
        self.rng = random.Random(_SEED)
        self.region = region
        self.used = {read_number(c.phones[0], "DE").e164 for c in RECORDING_CALLERS}
        self.emails: set[str] = set()

    def number(self, language: str) -> str:
        for _ in range(1000):
            region, prefix, digits = self.rng.choice(_NUMBERING[language])
            national = prefix + "".join(self.rng.choice("0123456789") for _ in range(digits))
            parsed = phonenumbers.parse(national, region)
            e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            if phonenumbers.is_valid_number(parsed) and e164 not in self.used:
                self.used.add(e164)
                return self.render(parsed, e164)
        raise RuntimeError(f"no free valid demo number for {language!r}")

    def render(self, parsed: phonenumbers.PhoneNumber, e164: str) -> str:
        """The number as some person would type it, readable back in the desk's region."""
        fmt = phonenumbers.PhoneNumberFormat
        international = phonenumbers.format_number(parsed, fmt.INTERNATIONAL)
        national = phonenumbers.format_number(parsed, fmt.NATIONAL)
        area, _, rest = national.partition(" ")
        candidates = (
            e164,
            international,
            "00" + international[1:],
            international.replace(" ", "-"),
            national,
            national.replace(" ", "-"),
            f"({area}) {rest}" if rest and not area.startswith("(") else national,
        )
        raw = self.rng.choice(candidates)
        # National forms only make sense inside the desk's own region.
        return raw if read_number(raw, self.region).e164 == e164 else international

    def person(self, language: str) -> tuple[str, str]:
        if language == "zh" and self.rng.random() < 0.3:
            name = self.rng.choice(sorted(_HANZI))
            return name, _HANZI[name]
        first, last = self.rng.choice(_FIRST[language]), self.rng.choice(_LAST[language])
        name = f"{last} {first}" if language == "zh" else f"{first} {last}"
        return name, f"{_ascii(first)}.{_ascii(last)}"

    def email(self, local: str, domain: str) -> str:
        address, n = f"{local}@{domain}", 1
        while address in self.emails:
            n += 1
            address = f"{local}{n}@{domain}"
        self.emails.add(address)
        return address

    def tier(self) -> Tier:
        return self.rng.choices((Tier.STANDARD, Tier.GOLD, Tier.PLATINUM), (70, 22, 8))[0]

    def customer(self, language: str, *, domain: str, organisation: str | None) -> DemoCustomer:
        name, local = self.person(language)
        phones = tuple(self.number(language) for _ in range(self.rng.choice((1, 1, 1, 2))))
        return DemoCustomer(
            name=name,
            phones=phones,
            tier=self.tier(),
            language=language,
            emails=(self.email(local, domain),) if self.rng.random() < 0.8 else (),
            tags=tuple(sorted(set(self.rng.sample(_TAGS, self.rng.choice((0, 0, 1, 2)))))),
            notes=self.rng.choice(_NOTES),
            organisation=organisation,
        )


def _in_region(customer: DemoCustomer, region: str) -> DemoCustomer:
    """The recorded callers are typed as a German would; outside DE use the E.164 form."""
    phones = []
    for raw in customer.phones:
        e164 = read_number(raw, "DE").e164 or raw
        phones.append(raw if read_number(raw, region).e164 == e164 else e164)
    return replace(customer, phones=tuple(phones))


def demo_customers(region: str = "DE") -> list[DemoCustomer]:
    """The demo customers, organisations before their staff; the same list every call."""
    gen = _Generator(region)
    customers = [_in_region(customer, region) for customer in RECORDING_CALLERS]
    for language in ("de", "de", "de", "de", "zh", "zh", "en", "en", "en", "fr") * 2:
        pattern = gen.rng.choice(_ORGS[language])
        org_name = pattern.format(gen.rng.choice(_LAST[language]))
        if any(c.name == org_name for c in customers):
            continue
        domain = _ascii(" ".join(org_name.replace(",", "").split()[:2])) + ".example"
        customers.append(
            DemoCustomer(
                name=org_name,
                phones=(gen.number(language),),
                kind=CustomerKind.ORGANISATION,
                tier=gen.tier(),
                language=language,
                emails=(gen.email("info", domain),),
                tags=("b2b",),
            )
        )
        for _ in range(gen.rng.randint(1, 4)):
            if len(customers) < DEMO_CUSTOMERS:
                customers.append(gen.customer(language, domain=domain, organisation=org_name))
    while len(customers) < DEMO_CUSTOMERS:
        language = gen.rng.choice(_LANGUAGES)
        domain = gen.rng.choice(_DOMAINS)
        customers.append(gen.customer(language, domain=domain, organisation=None))
    return customers[:DEMO_CUSTOMERS]


async def _seed_teams_and_users(session: AsyncSession, *, now: datetime) -> tuple[int, int]:
    teams: dict[str, Team] = {}
    teams_created = 0
    for team_name in TEAM_SKILLS:
        team = await session.scalar(select(Team).where(Team.name == team_name))
        if team is None:
            team = await create_team(session, TeamDraft(name=team_name), now=now)
            teams_created += 1
        teams[team_name] = team
    users_created = 0
    for spec in DEMO_USERS:
        user = await session.scalar(select(User).where(User.username == spec.username))
        if user is None:
            agent = None
            if spec.extension is not None:
                team_id = teams[spec.team].id if spec.team else None
                skills = [SkillIn(name=TEAM_SKILLS[spec.team])] if spec.team else []
                agent = AgentIn(
                    extension=spec.extension,
                    interface=f"PJSIP/{spec.extension}",
                    team_id=team_id,
                    skills=skills,
                )
            draft = UserDraft(
                username=spec.username,
                display_name=spec.display_name,
                password=DEMO_PASSWORD,
                role=spec.role,
                email=f"{spec.username}@calldesk.example",
                agent=agent,
            )
            user = await create_user(session, draft, now=now)
            users_created += 1
        if spec.lead and spec.team and teams[spec.team].lead_user_id is None:
            teams[spec.team].lead_user_id = user.id
    return teams_created, users_created


async def _seed_customers(uow: UnitOfWork, *, region: str, now: datetime) -> int:
    customers = demo_customers(region)
    first_numbers = [read_number(c.phones[0], region).e164 or "" for c in customers]
    owners = await phone_owners(uow.session, set(first_numbers))
    ids: dict[str, int] = {}
    created = 0
    for spec, number in zip(customers, first_numbers, strict=True):
        same_name = (
            cid
            for cid, name in owners.get(number, ())
            if normalise_name(name) == normalise_name(spec.name)
        )
        existing = next(same_name, None)
        if existing is not None:
            ids[spec.name] = existing
            continue
        draft = CustomerDraft(
            name=spec.name,
            kind=spec.kind,
            organisation_id=ids.get(spec.organisation) if spec.organisation else None,
            tier=spec.tier,
            language=spec.language,
            notes=spec.notes,
            phones=[PhoneIn(number=number) for number in spec.phones],
            emails=[EmailIn(address=address) for address in spec.emails],
            tags=list(spec.tags),
        )
        customer = await create_customer(uow, draft, region=region, now=now)
        ids[spec.name] = customer.id
        created += 1
    return created


async def seed_demo(
    *,
    sessions: async_sessionmaker[AsyncSession],
    bus: EventBus,
    region: str,
    now: datetime,
) -> DemoSummary:
    """Create whatever part of the demo data is missing, in one transaction."""
    async with UnitOfWork(sessions=sessions, bus=bus) as uow:
        teams_created, users_created = await _seed_teams_and_users(uow.session, now=now)
        customers_created = await _seed_customers(uow, region=region, now=now)
        await uow.commit()
    return DemoSummary(
        teams_created=teams_created,
        users_created=users_created,
        customers_created=customers_created,
    )

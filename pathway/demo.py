"""A synthetic demo data set: realistic shapes, invented people. Never real names, addresses or case content."""

from __future__ import annotations

import random
import zlib
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

from pathway import services
from pathway.accounts import set_password
from pathway.bootstrap import Forlop
from pathway.case import Case
from pathway.case import commands as do
from pathway.case.aggregate import TYPED_CHANNELS
from pathway.errors import DomainError
from pathway.people import ChildRecord, PersonRecord, municipalities

# Obviously invented: a common first name and a surname no Norwegian has.
FIRST = ["Kari", "Ola", "Ingrid", "Aisha", "Marta", "Leyla", "Nora", "Sofie", "Emma", "Amal", "Hanne", "Jonas"]
LAST = ["Testesen", "Eksempelsen", "Prøvedal", "Fiktivsen", "Demoberg", "Syntetisk"]
OUTCOMES = ["safe_housing", "returned_to_abuser", "moved_away", "declined", "transferred", "ended_early"]
RISK = ("low", "medium", "high", "medium")  # the demo's threat levels, a quarter of them high
PROFILES = ["new", "intake", "intake_overdue", "support", "support_paused", "after_stay", "returned", "closed"]
WEIGHTS = [6, 10, 6, 22, 6, 14, 4, 32]
# About one case in six is a person who had an earlier case coming back (a repeat contact, DOMAIN K13).
REPEAT_SHARE = 0.17


def _person(rng: random.Random, n: int, side: random.Random) -> PersonRecord:
    children = tuple(rng.randint(0, 17) for _ in range(rng.choice([0, 0, 0, 1, 2, 3])))
    return PersonRecord(
        name=f"{rng.choice(FIRST)} {rng.choice(LAST)} {n:04d}",
        birth_date=date(rng.randint(1940, 2006), rng.randint(1, 12), rng.randint(1, 28)),
        safe_contact=f"+47 000 {rng.randint(10, 99)} {rng.randint(100, 999)}",
        address=f"Fiktivgata {rng.randint(1, 99)}, 0000 Testby",
        address_protection=rng.choice(["none", "none", "none", "code7", "code6"]),
        children_ages=children,
        interpreter_language=rng.choice([None, None, None, "arabisk", "somali", "ukrainsk", "polsk"]),
        needs=tuple(sorted(rng.sample(["disability", "substance_use", "elderly", "minority_background"], rng.randint(0, 2)))),
        # Most live in Bergen; the rest anywhere in the region.
        home_municipality=side.choice([municipalities()[0]] * 3 + list(municipalities())),
    )


def _who(rng: random.Random, n: int, start: datetime, earlier: list[tuple[datetime, PersonRecord]],
         side: random.Random) -> PersonRecord:
    """An invented person, or now and then the person of an earlier case (first contact before ``start``) who
    comes back: the same name and birth date, so the same blind index, which flags the case as a repeat contact.
    What intake added to the demo draws from ``side``, so the rest of the data set (units, profiles, children and
    so the checkpoints) stays what a seed always gave."""
    invented = _person(rng, n, side)
    before = [person for at, person in earlier if at < start]
    if before and side.random() < REPEAT_SHARE:
        again = side.choice(before)
        return invented.model_copy(update={"name": again.name, "birth_date": again.birth_date})
    return invented


# Demo users with the password "demo": only ever created by `forlop demo`, which is refused in production.
DEMO_PASSWORD = "demo"


def coordinator_of(index: int) -> str:
    """The demo coordinator of the index-th configured unit: koordinator, koordinator2, ..."""
    return "koordinator" if index == 0 else f"koordinator{index + 1}"


CONTACTS = {"police": "politi", "nav": "nav"}  # the demo's contact at each agency K6 and K7 hand over to


def demo_phone(index: int) -> str:
    """The work phone of the index-th demo coordinator: a number no one can have (a Norwegian number never starts
    with 0), and not the synthetic people's ("+47 000 00 ...")."""
    return f"+47 099 00 {index + 1:03d}"


def demo_users(units: tuple[str, ...]) -> list[tuple[str, str, str | None, str | None]]:
    """(name, role, unit, agency) of the demo users: a coordinator per configured unit (FORLOP_UNITS), the first
    unit's manager, a contact at the police, NAV, the housing office, child welfare and a school, an administrator."""
    return [*((coordinator_of(i), "coordinator", unit, None) for i, unit in enumerate(units)),
            ("politi", "partner", None, "police"), ("nav", "partner", None, "nav"),
            ("bolig", "partner", None, "housing"), ("barnevern", "partner", None, "child_welfare"),
            ("skole", "partner", None, "school"),
            ("leder", "manager", units[0], None), ("admin", "admin", None, None)]


def seed_demo(core: Forlop, *, cases: int, seed: int, progress: Callable[[int], None] | None = None,
              now: datetime | None = None) -> str:
    """Create the demo users and ``cases`` synthetic cases; returns a one-line summary of what was made."""
    for username, role, unit, agency in demo_users(core.settings.units):
        phone = demo_phone(core.settings.units.index(unit)) if role == "coordinator" and unit else None
        try:
            services.add_user(engine=core.engine, username=username, role=role, unit=unit, agency=agency,
                              phone=phone)
        except DomainError:
            continue  # already there: seeding twice adds cases, not users
        set_password(core.engine, username, DEMO_PASSWORD)
    rng = random.Random(seed)
    now = now or datetime.now(timezone.utc)
    made: Counter[str] = Counter()
    earlier: list[tuple[datetime, PersonRecord]] = []
    side = random.Random(f"{seed}/intake")
    for n in range(1, cases + 1):
        profile = rng.choices(PROFILES, WEIGHTS)[0]
        outcome = OUTCOMES[(n // len(PROFILES)) % len(OUTCOMES)]
        _one_case(core, rng, n, profile, outcome, now, earlier, side)
        made[profile] += 1
        if progress is not None:
            progress(1)
    if cases:
        _referrals(core, now)
    made_of = ", ".join(f"{k} {v}" for k, v in sorted(made.items())) or "only the demo users"
    return f"{cases} synthetic case{'' if cases == 1 else 's'}: {made_of}"


REFERRALS = [  # (hours ago, risk, contact agreed, declined with this reason or None): invented, as every demo person
    (30, "medium", True, "Personen bor i en annen kommune; henvist dit"),
    (5, "high", True, None),
    (1.5, "low", False, None),
]


def _referrals(core: Forlop, now: datetime) -> None:
    """Police referrals to the first unit from the demo's police contact: two waiting in the coordinators' queue, one
    declined with its reason (which the police read on their page)."""
    from pathway.services import referrals

    unit = core.settings.units[0]
    for n, (hours, risk, agreed, declined) in enumerate(REFERRALS, start=1):
        referral_id = referrals.send(
            engine=core.engine, keys=core.keys, units=core.settings.units, sender=CONTACTS["police"], agency="police",
            unit=unit, content=referrals.content_of(f"Henvist Testesen {n:04d}", f"+47 000 00 {n:03d}",
                                                    "Syntetisk: trusler fra tidligere partner"),
            risk=risk, contact_agreed=agreed, public_url=core.settings.public_url, at=now - timedelta(hours=hours))
        if declined is not None:
            referrals.decline(engine=core.engine, keys=core.keys, referral_id=referral_id, unit=unit,
                              expected_version=None, actor=coordinator_of(0), reason=declined,
                              public_url=core.settings.public_url, at=now - timedelta(hours=hours - 1))


CHILD_NAMES = ["Testbarn Alva", "Testbarn Isak", "Testbarn Maja", "Testbarn Noah", "Testbarn Selma", "Testbarn Ali"]


def _children(core: Forlop, reference: str, person: PersonRecord, coordinator: str, clock: datetime,
              now: datetime, *, notice: bool) -> None:
    """A pathway for each of the person's children (up to two), opened a few hours after the adult's intake: the
    child-welfare notice assessed (with ``notice``, the first child's sent on the duty to inform, without consent,
    with its reason, and accepted and completed by child welfare), the child's conversation done, and the school
    contacted on the parent's consent for a child in school or kindergarten. Drawn from the reference, not from the
    demo's ``rng``, so that every other demo figure stays as it was."""
    draw = random.Random(f"{reference}/children")
    at = clock
    for age in person.children_ages[:2]:
        at += timedelta(hours=draw.uniform(1, 6))
        if at >= now:
            return
        school = "Fiktiv skole" if age >= 6 else "Fiktiv barnehage" if age >= 1 else None
        shared = draw.random() < 0.3
        child = services.open_child_pathway(
            uow=core.uow(), reference=reference, expected_version=None, actor=coordinator, keys=core.keys, at=at,
            reference_prefix=core.settings.reference_prefix,
            child=ChildRecord(first_name=draw.choice(CHILD_NAMES), birth_year=max(now.year - age, 1990),
                              school=school),
            conditions=["shared_parental_responsibility"] if shared else [])
        moves: list[Callable[[Case, datetime], object]] = [lambda c, t: _complete(c, "B1", coordinator, t)]
        if notice and age == person.children_ages[0]:
            moves += [lambda c, t: c.execute(do.CreateHandover(
                          "B2", legal_basis="child_welfare_duty", reason="Bekymring for barnets omsorgssituasjon",
                          note="Mor er informert om meldingen"), actor=coordinator, at=t),
                      lambda c, t: c.execute(do.UpdateHandover(c.handovers[-1].id, "accepted"), actor="barnevern",
                                             at=t),
                      lambda c, t: c.execute(do.UpdateHandover(c.handovers[-1].id, "completed",
                                                               note="Melding mottatt; undersøkelse startet"),
                                             actor="barnevern", at=t)]
        else:
            moves.append(lambda c, t: _complete(c, "B2", coordinator, t))
        if school is not None:
            moves += [lambda c, t: c.execute(do.RecordConsent("school", scope=("name", "contact")), actor=coordinator,
                                             at=t),
                      lambda c, t: c.execute(do.CreateHandover("B3"), actor=coordinator, at=t)]
        when = at
        for move in moves:
            when += timedelta(hours=draw.uniform(2, 30))
            if when >= now:
                break
            def change(c: Case, m: Callable[[Case, datetime], object] = move, t: datetime = when) -> object:
                return m(c, t)

            try:
                services.change_case(uow=core.uow(), reference=child.reference, expected_version=None, change=change)
            except DomainError:
                break


DEVIATIONS = ["personen var ikke tilgjengelig", "venter på tolk", "personen ba om utsettelse", "høy arbeidsmengde"]


def _complete(case: Case, code: str, actor: str, at: datetime) -> None:
    """Complete a checkpoint; when it is late, give a (synthetic) deviation reason, as the pathway requires."""
    late = any(s.code == code and s.overdue(at) for s in case.steps)
    note = DEVIATIONS[zlib.crc32(f"{case.reference}{code}".encode()) % len(DEVIATIONS)] if late else None
    case.execute(do.CompleteStep(code, note=note), actor=actor, at=at)


def _one_case(core: Forlop, rng: random.Random, n: int, profile: str, outcome: str, now: datetime,
              earlier: list[tuple[datetime, PersonRecord]], side: random.Random) -> None:
    # Cases still under way began within the last four months; closed ones over the last year and a month, so that
    # the managers' report (the last 12 full months) has figures in every month.
    # (The same draws in the same order as before, so that every other demo figure stays as it was.)
    young = {"new": rng.uniform(0.05, 0.6), "intake": rng.uniform(0.2, 0.9), "intake_overdue": rng.uniform(2, 6)}
    older = rng.uniform(10, 120)
    age = young.get(profile, older * 3.3 if profile == "closed" else older)
    start = now - timedelta(days=age)
    shelter = rng.random() < 0.6
    units = core.settings.units
    unit_index = rng.randrange(len(units))
    person = _who(rng, n, start, earlier, side)
    earlier.append((start, person))
    case = services.open_case(
        uow=core.uow(), pathway_id=core.settings.default_pathway, unit=units[unit_index], first_contact_at=start,
        actor="mottak", keys=core.keys, index_key=core.settings.index_key,
        reference_prefix=core.settings.reference_prefix, person=person,
        conditions=["shelter_stay"] if shelter else [], at=start, contact_channel=side.choice(TYPED_CHANNELS),
    )
    if profile in ("new", "intake_overdue"):
        return
    clock = start
    coordinator = coordinator_of(unit_index)

    def step(hours: float, change: Callable[[Case, datetime], object]) -> bool:
        # ``change`` runs before step returns, so a lambda may use the loop variables of the moment.
        nonlocal clock
        at = clock + timedelta(hours=hours)
        if at >= now:
            return False
        clock = at
        try:
            services.change_case(uow=core.uow(), reference=case.reference, expected_version=None,
                                 change=lambda c: change(c, at))
        except DomainError:
            return True  # the demo tries plausible moves; a refused one is simply not taken
        return True

    ok = step(rng.uniform(1, 20), lambda c, at: _complete(c, "K1", "mottak", at))
    # The threat assessment's level, recorded with K1 (some high); chosen by the reference, not by ``rng``, so that
    # every other demo figure stays as it was.
    level = RISK[zlib.crc32(f"{case.reference}risk".encode()) % len(RISK)]
    ok = ok and step(0, lambda c, at: c.execute(do.RecordRisk(level), actor="mottak", at=at))
    ok = ok and step(rng.uniform(0.5, 6), lambda c, at: _complete(c, "K2", "mottak", at))
    if profile == "intake":
        return
    ok = ok and step(rng.uniform(2, 40), lambda c, at: c.execute(do.AssignCoordinator(coordinator), actor="leder", at=at))
    agencies = ["police", "nav"] if rng.random() < 0.7 else ["nav"]
    for agency in agencies:
        scope = ("name", "contact", "threat_assessment") if agency == "police" else ("name", "contact", "finances")
        ok = ok and step(rng.uniform(1, 12), lambda c, at: c.execute(do.RecordConsent(agency, scope=scope, given=True), actor=coordinator, at=at))
    if "children" in case.conditions:
        # The same draws as when K5 carried the child-welfare notice, so that every other demo figure stays.
        notice = not zlib.crc32(f"{case.reference}K5".encode()) % 3
        ok = ok and step(rng.uniform(1, 30), lambda c, at: _complete(c, "K5", "mottak", at))
        if notice and ok:
            rng.uniform(2, 20), rng.uniform(1, 10)
        if ok:
            _children(core, case.reference, person, coordinator, clock, now, notice=notice)
    ok = ok and step(rng.uniform(1, 10), lambda c, at: c.execute(do.Advance("start_support"), actor=coordinator, at=at))
    for code in ("K6", "K7"):
        ok = ok and step(rng.uniform(1, 30), lambda c, at: c.execute(do.CreateHandover(code), actor=coordinator, at=at))
    tasks = [(t.id, CONTACTS[t.agency]) for t in services.get_case(uow=core.uow(), reference=case.reference).handovers
             if t.code in ("K6", "K7")]
    for task_id, contact in tasks:
        if rng.random() < 0.8:
            ok = ok and step(rng.uniform(2, 20), lambda c, at: c.execute(do.UpdateHandover(task_id, "accepted"), actor=contact, at=at))
            if rng.random() < 0.8:
                ok = ok and step(rng.uniform(5, 60), lambda c, at: c.execute(do.UpdateHandover(task_id, "completed", note="utført"), actor=contact, at=at))
    if profile == "support_paused":
        step(rng.uniform(5, 100), lambda c, at: c.execute(do.Pause(reason="personen er ikke tilgjengelig"), actor=coordinator, at=at))
        return
    ok = ok and step(rng.uniform(24, 240), lambda c, at: _complete(c, "K8", coordinator, at))
    if profile == "support" or not ok:
        return
    if shelter:
        plan = clock + timedelta(days=rng.uniform(6, 20))
        ok = ok and step(rng.uniform(1, 48), lambda c, at: c.execute(do.RecordMilestone("move_out_planned", when=plan), actor=coordinator, at=at))
        ok = ok and step(rng.uniform(24, 96), lambda c, at: _complete(c, "K10", coordinator, at))
    housing = zlib.crc32(f"{case.reference}K9".encode()) % 6
    if housing > 1:  # the person found a home without a handover: the coordinator records it settled
        ok = ok and step(rng.uniform(24, 300), lambda c, at: _complete(c, "K9", coordinator, at))
    else:  # housing settled through NAV or the housing office: a handover, accepted and completed by its contact
        agency, contact = ("nav", "nav") if housing == 0 else ("housing", "bolig")
        ok = ok and step(rng.uniform(24, 300), lambda c, at: c.execute(
            do.RecordConsent(agency, scope=("name", "contact", "finances")), actor=coordinator, at=at))
        ok = ok and step(0, lambda c, at: c.execute(
            do.CreateHandover("K9", agency=agency, note="Trenger hjelp med depositum"), actor=coordinator, at=at))
        k9 = [t.id for t in services.get_case(uow=core.uow(), reference=case.reference).handovers if t.code == "K9"]
        for status, hours in (("accepted", 6), ("completed", 30)):
            ok = ok and bool(k9) and step(hours, lambda c, at: c.execute(
                do.UpdateHandover(k9[-1], status, note="bolig avklart" if status == "completed" else None),
                actor=contact, at=at))
    ok = ok and step(rng.uniform(2, 48), lambda c, at: c.execute(do.Advance("move_out"), actor=coordinator, at=at))
    if profile == "returned":
        step(rng.uniform(24, 200), lambda c, at: c.execute(do.Advance("back_to_support", reason="ny krise; tilbake på krisesenteret"), actor=coordinator, at=at))
        return
    ok = ok and step(rng.uniform(24, 160), lambda c, at: _complete(c, "K11", coordinator, at))
    if profile == "closed" and ok:
        early = outcome in ("transferred", "ended_early", "returned_to_abuser", "declined")
        if outcome == "transferred":
            step(rng.uniform(24, 400), lambda c, at: c.execute(do.Transfer("Testkommune", reason="flyttet til annen kommune"), actor=coordinator, at=at))
        else:
            step(rng.uniform(24, 400), lambda c, at: c.execute(do.Close(outcome, reason="avsluttet etter avtale" if early else None), actor=coordinator, at=at))

"""Small-count suppression, so that no person can be recognised.

---------------------------------------------------------------
- Every published count from 1 to 4 is given as the string ``"<5"`` (primary suppression). A 0 describes nobody
  and is shown as 0, unless it is needed as a complement (below); ``"<5"`` therefore means "0 to 4".
- Complementary suppression: counts that add up to another published count form a sum (the outcome codes add up
  to the cases closed; the units add up to all units; the four months of a tertial add up to the tertial). No
  ``"<5"`` may be worked out from the published sums, also by combining several of them (a unit's months, all
  units' months and the tertials form a two-way table with margins): each ``"<5"`` must keep at least two possible
  values in some table of whole numbers that fits everything published (``"<5"`` = 0–4, ``"x"`` = 5 or more).
  ``suppress`` proves that by finding such a table (moving suppressed counts by ±1 so that every sum still
  holds); while it cannot, it also suppresses the smallest visible member of the sum where the search got stuck
  (the next-smallest cell of that row: a 0 becomes ``"<5"``, a count of 5 or more becomes ``"x"``), and when no
  member is left, the sum's total (``"x"``). Not finding a proof counts as unsafe, so the search can only cause
  extra suppression; on two-way tables with margins it is exact.
- Minimal for the order of choice: the complements are then taken back in the reverse order they were chosen, each
  published again when every ``"<5"`` linked to it stays protected without it. So no count of 5 or more (and no 0)
  is hidden unless publishing it alone would give a ``"<5"`` away, and a count the published sums give away
  anyway (the one unit of a region is all units) is never hidden in one place and shown in another.
- The decisions are taken over the whole breakdown (every unit, every month of every tertial touched) and only then
  is the requested slice returned, so a report for one unit, for all units, by month or by tertial are consistent:
  no figure of one report can be subtracted from another's to undo a suppression. The period range is widened to
  whole periods (whole tertials internally) for the same reason.
- Shares and percentiles are given (as numbers) only when their base count is shown and at least 5; otherwise
  ``None``. A rate whose numerator is a published count (returned to abuser, repeat contact) is ``None`` whenever
  that count is suppressed, so the rate cannot undo it.
- Deviation reasons: a reason that may be named in a tertial (given at least 5 times over all units, in at least 5
  different cases: free text could name a person) is a count of its own in every row, and the others together are
  one more (``OTHER``), in the same sums across units and months, suppressed like every other count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
Count = int | str  # an exact count (0 or at least 5), SMALL (0–4) or HIDDEN (5 or more, hidden to protect a SMALL)

MIN_COUNT = 5
SMALL = "<5"
HIDDEN = "x"
OTHER = "other (<5)"
_SHOWN = "shown"


def _small(n: int) -> bool:
    return 0 < n < MIN_COUNT


class _Audit(Generic[K]):
    """The published counts as a system of sums, and the search for another table that fits it.

    A "<5" is safe when some other table of whole numbers agrees with everything published (every shown count,
    every sum, "<5" meaning 0–4 and "x" meaning 5 or more) and gives it another value. The search moves
    suppressed counts by ±1 so that every sum still holds (a cycle, as in a two-way table); finding one proves the
    value cannot be worked out. Not finding one within the budget counts as unsafe, so the search can only cause
    extra suppression, never too little. Two-way tables with their margins are network tables: there, ±1 cycles
    find every alternative, so the check is exact.
    """

    DEPTH = 24
    BUDGET = 4_000

    def __init__(self, values: Mapping[K, int], groups: Iterable[tuple[K, Sequence[K]]]) -> None:
        self.values = values
        self.state = {key: SMALL if _small(value) else _SHOWN for key, value in values.items()}
        self.sums: list[dict[K, int]] = []
        self.sums_of: defaultdict[K, list[int]] = defaultdict(list)
        # Per sum and direction (+1, -1 for the sum): its suppressed counts that have room to move that way, with
        # their step, in the order they were suppressed. A suppressed count stays suppressed, so its room never
        # changes: the search only subtracts the few counts it has moved already, instead of testing every member
        # of a sum at every step (a sum over 300 units has hundreds).
        self.movable: list[dict[int, list[tuple[K, int]]]] = []
        self.movable_keys: list[dict[int, set[K]]] = []
        for total, members in groups:
            coeff = {m: 1 for m in members}
            coeff[total] = -1
            self.sums.append(coeff)
            self.movable.append({1: [], -1: []})
            self.movable_keys.append({1: set(), -1: set()})
            e = len(self.sums) - 1
            for key, c in coeff.items():
                self.sums_of[key].append(e)
                if self.state[key] != _SHOWN:
                    self._add_suppressed(e, key, c)

    def _add_suppressed(self, e: int, key: K, c: int) -> None:
        for need in (1, -1):
            if self._fits(key, need * c):
                self.movable[e][need].append((key, need * c))
                self.movable_keys[e][need].add(key)

    def suppress(self, key: K) -> None:
        self.state[key] = SMALL if self.values[key] < MIN_COUNT else HIDDEN
        for e in self.sums_of[key]:
            self._add_suppressed(e, key, self.sums[e][key])

    def reveal(self, key: K) -> None:
        """Publish a count suppressed as a complement again (its value is 0 or at least 5)."""
        self.state[key] = _SHOWN
        for e in self.sums_of[key]:
            for need in (1, -1):
                if key in self.movable_keys[e][need]:
                    self.movable_keys[e][need].discard(key)
                    self.movable[e][need] = [(k, step) for k, step in self.movable[e][need] if k != key]

    def _fits(self, key: K, step: int) -> bool:
        value = self.values[key] + step
        return 0 <= value < MIN_COUNT if self.state[key] == SMALL else value >= MIN_COUNT

    def protected(self, key: K) -> tuple[set[K], list[tuple[int, int]]]:
        """The counts another fitting table changes, ``key`` among them (each of them can therefore not be worked
        out either); if none is found: empty, and the sums the search got stuck in (with their depth)."""
        stuck: list[tuple[int, int]] = []
        for sign in (1, -1):
            if self._fits(key, sign):
                moved = self._search(key, sign, stuck)
                if moved:
                    return moved, []
        return set(), stuck

    def _search(self, key: K, sign: int, stuck: list[tuple[int, int]]) -> set[K]:
        moved: dict[K, int] = {}
        imbalance: defaultdict[int, int] = defaultdict(int)
        unbalanced: set[int] = set()  # the sums whose imbalance is not 0
        nodes = 0

        def shift(k: K, step: int) -> None:
            for e in self.sums_of[k]:
                imbalance[e] += self.sums[e][k] * step
                if imbalance[e]:
                    unbalanced.add(e)
                else:
                    unbalanced.discard(e)

        def move(k: K, step: int) -> None:
            moved[k] = step
            shift(k, step)

        def undo(k: K) -> None:
            shift(k, -moved.pop(k))

        def search(depth: int) -> bool:
            nonlocal nodes
            open_sums = sorted(unbalanced)
            if not open_sums:
                return True
            if depth >= self.DEPTH or nodes >= self.BUDGET:
                stuck.extend((depth, e) for e in open_sums)
                return False
            # The open sum with the fewest ways to rebalance it (the first of them on a tie); none: stuck.
            best: tuple[int, int, int] | None = None
            for e in open_sums:
                need = -1 if imbalance[e] > 0 else 1
                keys = self.movable_keys[e][need]
                n = len(keys) - sum(1 for k in moved if k in keys)
                if not n:
                    stuck.append((depth, e))
                    return False
                if best is None or n < best[0]:
                    best = (n, e, need)
            assert best is not None
            for k, step in self.movable[best[1]][best[2]]:
                if k in moved:  # the same counts at every turn of this loop: each move is undone before the next
                    continue
                nodes += 1
                move(k, step)
                if search(depth + 1):
                    return True
                undo(k)
            return False

        move(key, sign)
        return set(moved) if search(0) else set()

    def complement(self, key: K, stuck: list[tuple[int, int]]) -> K | None:
        """The count to hide next: the smallest visible count (a 0, else one of 5 or more) in the sum the search
        got stuck in nearest to ``key`` (a member before the total); failing that, in the nearest sum linked to
        ``key`` through suppressed counts."""
        order = [e for _, e in sorted(set(stuck))]
        seen: set[int] = set()
        reached, frontier = {key}, [key]
        while True:
            for e in order:
                if e in seen:
                    continue
                seen.add(e)
                pick = self._candidate(e)
                if pick is not None:
                    return pick
            order = []
            for k in frontier:
                for e in self.sums_of[k]:
                    if e not in seen:
                        order.append(e)
            if not order:
                return None
            frontier = [k for e in order for k in self.sums[e] if self.state[k] != _SHOWN and k not in reached]
            reached.update(frontier)

    def _candidate(self, e: int) -> K | None:
        coeff = self.sums[e]
        members = [(self.values[k], i, k) for i, (k, c) in enumerate(coeff.items())
                   if c > 0 and self.state[k] == _SHOWN and (self.values[k] == 0 or self.values[k] >= MIN_COUNT)]
        if members:
            return min(members)[2]
        total = next(k for k, c in coeff.items() if c < 0)
        if self.state[total] == _SHOWN and self.values[total] >= MIN_COUNT:
            return total
        return None


class _Proofs(Generic[K]):
    """For each protected count, the other fitting table that proves it (the counts it moves), and for each count
    the protected ones whose table moves it. A count none was found for (the search's budget) has none."""

    def __init__(self) -> None:
        self.of: dict[K, frozenset[K]] = {}
        self._users: defaultdict[K, set[K]] = defaultdict(set)

    def found(self, moved: set[K]) -> None:
        table = frozenset(moved)
        for key in moved:
            for cell in self.of.get(key, ()):
                self._users[cell].discard(key)
            self.of[key] = table
            for cell in table:
                self._users[cell].add(key)

    def using(self, cell: K) -> list[K]:
        """The protected counts whose table moves ``cell`` (in no particular order: whether each can be proved
        again without it depends on the published state alone, not on the order they are tried in)."""
        return list(self._users[cell])


def suppress(values: Mapping[K, int], groups: Iterable[tuple[K, Sequence[K]]]) -> dict[K, Count]:
    """Published values: counts 1–4 become SMALL; then, as long as some SMALL could be worked out from the
    published sums (``groups``: ``(total, members)`` with ``values[total] == sum(values[m] for m in members)``),
    the smallest visible member of the sum that gives it away is suppressed too (a 0 as SMALL, a count of 5 or
    more as HIDDEN), or, when no member is left, its total. Deterministic for a given input: ties go to the member
    listed first, SMALLs are treated in the order given."""
    sums = [(total, list(members)) for total, members in groups]
    for key, value in values.items():
        if value < 0:
            raise ValueError(f"negative count at {key!r}")
    for total, members in sums:
        if values[total] != sum(values[m] for m in members):
            raise ValueError(f"group {total!r}: the members do not add up to the total")
    audit = _Audit(values, sums)
    smalls = [k for k, s in audit.state.items() if s == SMALL]
    proofs: _Proofs[K] = _Proofs()
    chosen: list[K] = []
    for key in smalls:
        while key not in proofs.of:
            moved, stuck = audit.protected(key)
            if moved:
                proofs.found(moved)  # suppressing more later only adds room: they stay safe
                break
            pick = audit.complement(key, stuck)
            if pick is None:  # everything linked to it is suppressed already
                break
            audit.suppress(pick)
            chosen.append(pick)
    # Minimal: a complement chosen early may have become unnecessary through later ones (or was never of use, as a
    # count the published sums give away anyway). In the reverse order of choice, each is published again when
    # every "<5" whose proof moved it is proved again without it (a proof that does not move it still holds).
    for pick in reversed(chosen):
        audit.reveal(pick)
        renewed: list[set[K]] = []
        done: set[K] = set()
        for key in [k for k in proofs.using(pick) if _small(values[k])]:
            if key in done:
                continue
            moved, _ = audit.protected(key)
            if not moved:
                audit.suppress(pick)
                break
            renewed.append(moved)
            done |= moved
        else:
            for moved in renewed:
                proofs.found(moved)
    return {key: values[key] if s == _SHOWN else s for key, s in audit.state.items()}

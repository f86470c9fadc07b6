"""Fixture values: literals that fit a column's type, its checks and listed values, distinct on demand.

A column's `Domain` is read from the physical schema (type, enum labels, CHECK expressions as the
generator writes them or as PostgreSQL prints them back), so the same code serves blueprints and
any migrations folder. `value(j)` is the j-th distinct literal, None once the domain runs out.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from decimal import Decimal

from ..model import Blueprint, BlueprintError
from ..model.schema import Column, Table
from ..sql.ident import literal
from .world import World, stable_id

_ALLOWED = re.compile(r"(?:in \(|= any \(array\[)(.*?)[\])]", re.I)
_NUMBER = r"\(?'?(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)'?"
TEXT_TYPES = ("text", "character varying", "varchar", "citext", "character")
NUMBER_TYPES = ("integer", "bigint", "smallint", "numeric", "real", "double precision")
INTEGER_TYPES = ("smallint", "integer", "bigint")
# An integer column's bound, tightened to the integers inside it: (rounding, then add).
_TIGHTEN = {">=": ("ROUND_CEILING", 0), ">": ("ROUND_FLOOR", 1), "<=": ("ROUND_FLOOR", 0), "<": ("ROUND_CEILING", -1)}
# A decimal column's strict bound, nudged inside.
_NUDGE = {">": Decimal("0.001"), "<": Decimal("-0.001")}
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Requirement:
    """A check that holds some columns filled or empty while `column` holds one of `values` (a blueprint's
    `requires`): `kind <> 'reply' or rating is null`, or as PostgreSQL prints it back,
    `CHECK (((kind <> 'reply'::public.reviews_kind_enum) OR (rating IS NULL)))`. Values are the literals' texts."""

    column: str
    values: tuple[str, ...]
    filled: tuple[str, ...]
    empty: tuple[str, ...]

    def applies(self, value: str | None) -> bool:
        """Whether a row whose column holds the literal `value` (None: NULL, or left out) is held to it."""
        return value is not None and literal_text(value) in self.values


_CAST = re.compile(r"::\s*[a-z_][\w.\" ]*?(?:\[\])?(?=[\s),\]]|$)", re.I)
_TOKEN = re.compile(r"'(?:[^']|'')*'|[^']+")
_NAME = r'"?[a-z_][\w$]*"?'
_LITERAL = re.compile(r"'(?:[^']|'')*'|-?[\w.]+")
_PART = re.compile(rf'^({_NAME}) is (not )?null$')


def literal_text(value: str) -> str:
    """A literal's text: `'review'::public.kind_enum` and `'review'` -> review; `5` -> 5; `true` -> true."""
    v = _bare(_outside_quotes(str(value).strip(), lambda t: _CAST.sub("", t)))
    return v[1:-1].replace("''", "'") if len(v) >= 2 and v[0] == v[-1] == "'" else v.lower()


def _outside_quotes(text: str, change) -> str:
    """`text` with `change` applied to what lies outside its string literals only."""
    return "".join(t if t.startswith("'") else change(t) for t in _TOKEN.findall(text))


def _top_level(text: str, sep: str) -> list[str]:
    """`text` split at `sep` where it stands outside quotes and parentheses."""
    parts, depth, quoted, last, k = [], 0, False, 0, 0
    while k < len(text):
        ch = text[k]
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch in "([":
            depth += 1
        elif not quoted and ch in ")]":
            depth -= 1
        elif not quoted and depth == 0 and text.startswith(sep, k):
            parts.append(text[last:k])
            last = k = k + len(sep)
            continue
        k += 1
    return [*parts, text[last:]]


def _bare(text: str) -> str:
    """`text` without the parentheses around all of it."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def _balanced(text: str) -> bool:
    depth, quoted = 0, False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        elif not quoted:
            depth += (ch == "(") - (ch == ")")
            if depth < 0:
                return False
    return depth == 0 and not quoted


@lru_cache(maxsize=4096)
def requirement(expression: str) -> Requirement | None:
    """The rule a check states, if it is one of `requires`' (any other check: None): exactly `<outside> or
    <parts>`, where <outside> is `col <> v`, `col not in (...)` or `col <> all (array[...])` and <parts> are
    `col is [not] null` joined by `and`. Cached: the domain of every fixture value asks it of every check."""
    text = _outside_quotes(_unwrapped(expression or ""), lambda t: re.sub(r"\s+", " ", _CAST.sub("", t).lower()))
    sides = _top_level(text, " or ")
    if len(sides) != 2:
        return None
    outside, rest = _bare(sides[0]), _bare(sides[1])
    if m := re.fullmatch(rf"({_NAME}) <> all \(array\[(.*)\]\)", outside):
        column, items = m.group(1), _top_level(m.group(2), ",")
    elif m := re.fullmatch(rf"({_NAME}) not in \((.*)\)", outside):
        column, items = m.group(1), _top_level(m.group(2), ",")
    elif m := re.fullmatch(rf"({_NAME}) <> (.+)", outside):
        column, items = m.group(1), [m.group(2)]
    else:
        return None
    values = []
    for item in items:
        item = _bare(item)
        if not _LITERAL.fullmatch(item):
            return None
        values.append(literal_text(item))
    filled, empty = [], []
    for part in _top_level(rest, " and "):
        if (p := _PART.match(_bare(part))) is None:
            return None
        (empty if p.group(2) is None else filled).append(p.group(1).strip('"'))
    return Requirement(column.strip('"'), tuple(values), tuple(filled), tuple(empty)) if values else None


def enum_labels(schema) -> dict[str, list[str]]:
    """Each enum type's labels, by its qualified and its bare name (as columns name it either way)."""
    return {f"{e.schema_name}.{e.name}": e.values for e in schema.enums} | {e.name: e.values for e in schema.enums}


def requirements(table: Table) -> list[Requirement]:
    return [r for k in table.constraints if k.kind == "check" and (r := requirement(k.expression or ""))]


def allowed_values(table: Table, column: str) -> list[str]:
    """Values a check constraint lists for `column` (`col in (...)` or `col = any (array[...])`); a
    requirement's `not in` list says where a rule applies, not what the column may hold."""
    col = re.escape(column)
    for k in table.constraints:
        expr = k.expression or ""
        if k.kind == "check" and re.search(rf"\b{col}\b", expr) and (m := _ALLOWED.search(expr)) \
                and requirement(expr) is None:
            return re.findall(r"'((?:[^']|'')*)'", m.group(1))
    return []


def _bounds(table: Table, pattern: str) -> list[tuple[str, Decimal]]:
    """(operator, number) of every `<pattern> op number` in the table's checks."""
    out = []
    for k in table.constraints:
        if k.kind == "check" and requirement(k.expression or "") is None:
            for op, number in re.findall(pattern + r"\s*(>=|<=|>|<)\s*" + _NUMBER, k.expression or "", re.I):
                out.append((op, Decimal(number)))
    return out


def _column_pattern(column: str) -> str:
    # `col`, `"col"`, `(col)::numeric` as PostgreSQL prints an integer column compared with a decimal.
    quoted = '"' + column.replace('"', '""') + '"'
    return rf'(?<![\w"])\(?(?:{re.escape(column)}|{re.escape(quoted)})(?![\w"])\)?(?:::[a-z ]+)?'


@dataclass(frozen=True)
class Domain:
    """What a column accepts: a kind, listed labels, numeric bounds or text lengths."""

    kind: str  # listed | integer | decimal | text | boolean | date | timestamptz | jsonb | uuid | other
    sql_type: str
    labels: tuple[str, ...] = ()
    lo: Decimal | None = None
    hi: Decimal | None = None
    min_len: int = 0
    max_len: int | None = None

    @property
    def size(self) -> int | None:
        """How many distinct values there are, None for (practically) unbounded."""
        if self.kind == "listed":
            return len(self.labels)
        if self.kind == "boolean":
            return 2
        if self.kind == "integer" and self.lo is not None and self.hi is not None:
            return max(0, int(self.hi) - int(self.lo) + 1)
        if self.kind == "decimal" and self.lo is not None and self.hi is not None and self.lo == self.hi:
            return 1
        if self.kind == "text" and self.max_len is not None and self.max_len <= 6:  # longer: unbounded enough
            return sum(36 ** n for n in range(max(self.min_len, 1), self.max_len + 1))
        return None

    def value(self, j: int, n: int, table: str, column: str) -> str | None:
        """The j-th distinct literal (n, the fixture's number, flavours text and ids); None past the end."""
        size = self.size
        if size is not None and j >= size:
            return None
        if self.kind == "listed":
            return literal(self.labels[j]) + ("" if self.sql_type == "text" else f"::{self.sql_type}")
        if self.kind == "boolean":
            return ("false", "true")[j]
        if self.kind == "integer":
            return str(self._integer(j))
        if self.kind == "decimal":
            return str(self._decimal(j))
        if self.kind == "text":
            return literal(self._text(j, n, column))
        if self.kind == "date":
            return "current_date" + (f" + {j}" if j else "")
        if self.kind == "timestamptz":
            # Never now() itself: the server writes now() into updated_at and archived_at on every change,
            # and verify runs in one transaction, so a key over them would clash with a fixture's value.
            return f"now() + interval '{j + 1} minutes'"
        if self.kind == "jsonb":
            return "'{}'" if j == 0 else literal('{"fixture": %d}' % j)
        if self.kind == "uuid":
            return literal(stable_id(table, column, str(n), *([str(j)] if j else [])))
        return f"{literal('fixture')}::{self.sql_type}"

    def _integer(self, j: int) -> int:
        # 1 when allowed (else the nearest bound), counting up to hi, then down to lo.
        lo, hi = self.lo, self.hi
        start = 1 if (lo is None or lo <= 1) and (hi is None or hi >= 1) else int(lo if lo is not None else hi)
        above = None if hi is None else int(hi) - start + 1
        return start + j if above is None or j < above else start - (j - above) - 1

    def _decimal(self, j: int) -> Decimal:
        lo, hi = self.lo, self.hi
        if lo is not None and hi is not None:
            return lo + (hi - lo) * Decimal(j) / Decimal(j + 1)  # lo, then ever closer to hi
        if lo is not None:
            return lo + j
        if hi is not None:
            return min(hi, Decimal(1)) - j
        return Decimal(1 + j)

    def _text(self, j: int, n: int, column: str) -> str:
        wanted = f"fixture{n}@example.com" if "email" in column else f"fixture{n}"
        if j == 0 and self.min_len <= len(wanted) <= (self.max_len or len(wanted)):
            return wanted
        # The j-th string over [0-9a-z], shortest first, as long as the check allows.
        length = max(self.min_len, 1)
        while j >= 36 ** length:
            j -= 36 ** length
            length += 1
        return "".join(_BASE36[(j // 36 ** i) % 36] for i in reversed(range(length)))


def domain(table: Table, col: Column, enums: dict[str, list[str]]) -> Domain:
    """The domain of `col` in `table`."""
    if options := allowed_values(table, col.name):
        return Domain("listed", col.type, labels=tuple(options))
    base = col.type.split("(")[0].strip().lower()
    labels = enums.get(base) or enums.get(base.replace("public.", ""))
    if labels:
        return Domain("listed", col.type, labels=tuple(labels))
    name = _column_pattern(col.name)
    if base in TEXT_TYPES:
        lo, hi = 0, None
        for op, v in _bounds(table, rf"char_length\(\s*{name}\s*\)"):
            if op in (">=", ">"):
                lo = max(lo, int(v) + (op == ">"))
            else:
                hi = min(hi if hi is not None else int(v), int(v) - (op == "<"))
        return Domain("text", col.type, min_len=lo, max_len=hi)
    if base in NUMBER_TYPES:
        integral = base in INTEGER_TYPES
        lo = hi = None
        for op, v in _bounds(table, rf"(?<!char_length\(){name}"):
            if integral:
                rounding, add = _TIGHTEN[op]
                v = v.to_integral_value(rounding) + add
            else:
                v += _NUDGE.get(op, 0)
            if op in (">=", ">"):
                lo = v if lo is None else max(lo, v)
            else:
                hi = v if hi is None else min(hi, v)
        return Domain("integer" if integral else "decimal", col.type, lo=lo, hi=hi)
    kind = {"boolean": "boolean", "date": "date", "jsonb": "jsonb", "json": "jsonb", "uuid": "uuid",
            "timestamptz": "timestamptz", "timestamp with time zone": "timestamptz", "timestamp": "timestamptz",
            "timestamp without time zone": "timestamptz"}.get(base, "other")
    return Domain(kind, col.type)


_COMPARISON = re.compile(r'^\s*"?([a-z_][a-z0-9_]*)"?\s*(<=|>=|<>|<|>)\s*"?([a-z_][a-z0-9_]*)"?\s*$')
_ORDERED = ("timestamptz", "timestamp with time zone", "timestamp", "timestamp without time zone", "date",
            *INTEGER_TYPES, "numeric")


def _unwrapped(expression: str) -> str:
    """The expression without what PostgreSQL prints around a whole check: `CHECK ((a > b))` -> `a > b`."""
    text = re.sub(r"\s+not valid\s*$", "", re.sub(r"^\s*check\s*(?=\()", "", expression, flags=re.I), flags=re.I)
    return _bare(text)


def ordered_columns(table: Table) -> dict[str, int]:
    """Ranks for columns that checks compare (`a > b`) or exclusions range over: a row whose values
    grow with the rank satisfies every comparison and gives a non-empty [start, end) range. (A copy: the
    ranks are computed once per set of constraints, asked for every value of every fixture row.)"""
    return dict(_ranks(tuple((k.kind, k.expression or "", tuple(k.columns)) for k in table.constraints)))


def _edges(constraints: tuple[tuple[str, str, tuple[str, ...]], ...]) -> list[tuple[str, str]]:
    """(smaller, larger) of each comparison a check makes and each range an exclusion takes."""
    edges: list[tuple[str, str]] = []
    for kind, expression, columns in constraints:
        if kind == "check" and (m := _COMPARISON.match(_unwrapped(expression))):
            a, op, b = m.groups()
            edges.append((b, a) if op in (">", ">=", "<>") else (a, b))
        elif kind == "exclude" and len(columns) >= 2:
            edges.append((columns[-2], columns[-1]))
    return edges


@lru_cache(maxsize=1024)
def _ranks(constraints: tuple[tuple[str, str, tuple[str, ...]], ...]) -> tuple[tuple[str, int], ...]:
    edges = _edges(constraints)
    rank: dict[str, int] = {c: 0 for pair in edges for c in pair}
    for _ in range(len(rank)):  # longest-path ranks; a cycle of strict comparisons has no solution anyway
        for small, large in edges:
            rank[large] = max(rank[large], rank[small] + 1)
    return tuple(rank.items())


@lru_cache(maxsize=1024)
def _groups(constraints: tuple[tuple[str, str, tuple[str, ...]], ...]) -> tuple[tuple[str, str], ...]:
    """Each ordered column's group (the least name among the columns comparisons and ranges tie it to): two
    ranges of one table, each held to its own bounds, start apart."""
    group: dict[str, str] = {}
    for small, large in _edges(constraints):
        group.setdefault(small, small)
        group.setdefault(large, large)
    changed = True
    while changed:
        changed = False
        for small, large in _edges(constraints):
            least = min(group[small], group[large])
            if group[small] != least or group[large] != least:
                group[small] = group[large] = least
                changed = True
    return tuple(group.items())


def comparisons(table: Table) -> list[tuple[str, str, str]]:
    """(column, operator, other column) of each check comparing two columns (`a < b`)."""
    return [m.groups() for k in table.constraints
            if k.kind == "check" and (m := _COMPARISON.match(_unwrapped(k.expression or "")))]


def ordered_value(table: Table, col: Column, n: int, world: World | None = None) -> str | None:
    """For a compared or ranged column: row n gets its own day (exclusion ranges never overlap), the
    columns ordered within it by hour (comparisons hold); numbers their own stretch of the check's bounds (the
    world gives each row its place there). None for any other column."""
    rank = ordered_columns(table).get(col.name)
    base = col.type.split("(")[0].strip().lower()
    if rank is None or base not in _ORDERED:
        return None
    if base == "date":
        return f"(date '2030-01-01' + {n * 10 + rank})"
    if base.startswith("timestamp"):
        return f"(timestamptz '2030-01-01 00:00:00+00' + interval '{n} days' + interval '{rank} hours')"
    span = number_span(table, col.name)
    return str(_number_base(span, table.name, n, world) + rank * span.unit)


# Row numbers run below 10,000 (matrix 1000s, support 7000s, cases 9000s): a bound past 10 times that keeps them.
_FAR = 100_000


@dataclass(frozen=True)
class Span:
    """Where a table's compared numbers may start (`low`..`high`, each column's bounds less its rank in units),
    how far apart rows start (`step` units: the widest exclusion range) and the unit (1, or a fraction for
    numeric columns bounded closely)."""

    low: Decimal | None
    high: Decimal | None
    unit: Decimal = Decimal(1)
    step: int = 1
    excluded: tuple[tuple[str, str], ...] = ()  # (start, end) of each exclusion over these numbers

    @property
    def capacity(self) -> int | None:
        """How many rows get a range apart from every other row's; None when unbounded."""
        if self.low is None or self.high is None:
            return None
        return 0 if self.high < self.low else int((self.high - self.low) // (self.step * self.unit)) + 1


def _tied(table: Table, column: str | None) -> set[str]:
    """The ordered columns comparisons and ranges tie to `column` (None: every ordered column)."""
    group = dict(_groups(tuple((k.kind, k.expression or "", tuple(k.columns)) for k in table.constraints)))
    return {c for c in ordered_columns(table) if column is None or group.get(c) == group.get(column)}


def number_span(table: Table, column: str | None = None) -> Span:
    """The span of the table's compared and ranged number columns tied to `column` (None: all of them)."""
    ranks = ordered_columns(table)
    tied = _tied(table, column)
    columns = tuple((c.name, ranks[c.name], kind, d.lo, d.hi) for c in table.columns
                    if c.name in tied and (kind := c.type.split("(")[0].strip().lower()) in NUMBER_TYPES
                    and (d := domain(table, c, {})))
    ranges = tuple((k.columns[-2], k.columns[-1]) for k in table.constraints if k.kind == "exclude"
                   and len(k.columns) >= 2)
    return _span(columns, ranges)


@lru_cache(maxsize=1024)
def _span(columns: tuple[tuple[str, int, str, Decimal | None, Decimal | None], ...],
          ranges: tuple[tuple[str, str], ...]) -> Span:
    ranks = {name: rank for name, rank, *_ in columns}
    excluded = tuple((a, b) for a, b in ranges if a in ranks and b in ranks)
    step = max([ranks[b] - ranks[a] for a, b in excluded] + [1])
    integral = any(kind in INTEGER_TYPES for _, _, kind, _, _ in columns)
    span = Span(None, None)
    # A numeric pair held to 0..1 has no room for whole steps: tenths, hundredths... until a thousand rows fit.
    for exponent in range(0, -1 if integral else -7, -1):
        unit = Decimal(1).scaleb(exponent)
        low = high = None
        for _, rank, _, lo, hi in columns:
            if lo is not None:
                floor = (math.ceil(lo) if integral else lo) - rank * unit
                low = floor if low is None else max(low, floor)
            if hi is not None:
                ceiling = (math.floor(hi) if integral else hi) - rank * unit
                high = ceiling if high is None else min(high, ceiling)
        span = Span(low, high, unit, step, excluded)
        if span.capacity is None or span.capacity >= 1000:
            break
    return span


def _number_base(span: Span, table: str, n: int, world: World | None) -> Decimal | int:
    """Row n's start: n * 10 where the bounds leave room for every row number (a lower bound above 0 shifts it,
    an upper bound below _FAR mirrors it); between two bounds, the row's own place in the world, `step` units
    apart (red team 27 V2: `effort <= budget` held to 1..5 took 10 and 11; session 30: rows clamped onto the
    bound shared one range, and the exclusion refused every move onto another's key). Past the last place, rows
    share it (`crowded_ranges` finds where fixtures do). Without a world, n * 10 held to the bounds (n * 10 where
    no start fits them)."""
    wanted = n * 10
    low, high = span.low, span.high
    if low is None and high is None:
        return wanted
    if high is None:
        return wanted if low <= 0 else low + wanted
    if low is None:
        return wanted if high >= _FAR else min(high, 0) - wanted
    if world is None or span.capacity == 0:
        return wanted if low > high else min(max(wanted, low), high)
    return low + min(world.slot(table, n), span.capacity - 1) * span.step * span.unit


@dataclass(frozen=True)
class Crowded:
    """A table whose exclusion's check bounds hold fewer disjoint ranges (`room`) than the world's rows take
    (`taken`, its fixtures and the rows tried so far): the rows past them share the last range."""

    table: str
    start: str
    end: str
    room: int
    taken: int
    wider: tuple[tuple[str, Decimal], ...]  # (column, upper bound) that would hold them all and as many again

    @property
    def example(self) -> str:
        """The widened bounds, `slot max 33, slot_end max 34`, in parentheses (empty without any)."""
        return f" (e.g. {', '.join(f'{c} max {hi}' for c, hi in self.wider)})" if self.wider else ""

    def __str__(self) -> str:
        wider = self.example
        return (f"{self.table}: the check bounds of {self.start} and {self.end} hold {self.room} disjoint "
                f"[{self.start}, {self.end}) range(s), and verify's world writes {self.taken} rows there before "
                f"its cases: rows past them share a range, so the exclusion refuses their writes (23P01 errors from "
                f"verify's own rows, not the backend's access control). To verify every case, widen the bounds"
                f"{wider}.")


def crowded_ranges(world: World, tables: list[Table]) -> list[Crowded]:
    """The tables whose bounded exclusion ranges the world's rows do not fit into, each row its own."""
    out = []
    for t in tables:
        taken = len(world.slots.get(t.name, {}))
        for start, end in dict.fromkeys(number_span(t).excluded):
            span = number_span(t, start)
            if span.capacity is None or taken < span.capacity:
                continue
            more = (2 * taken - span.capacity) * span.step * span.unit
            tied = _tied(t, start)
            wider = tuple((c.name, d.hi + more) for c in t.columns if c.name in tied
                          and (d := domain(t, c, {})).hi is not None)
            out.append(Crowded(t.name, start, end, span.capacity, taken, wider))
    return out


def crowded_refusal(bp: Blueprint, world: World) -> BlueprintError | None:
    """Why verify (and the pgTAP file render writes) cannot judge `bp`: an exclusion whose check bounds hold fewer
    ranges than the world's rows need, named by the bound to widen; None when every row has its own."""
    for crowded in crowded_ranges(world, world.schema.tables if world.schema else []):
        i, entity = next(((i, e) for i, e in enumerate(bp.entities) if e.name == crowded.table), (None, None))
        j = next((j for j, f in enumerate(entity.fields) if f.name == crowded.end), None) if entity else None
        at = f"entities[{i}].fields[{j}].check.max" if j is not None else None
        return BlueprintError(
            f"verify cannot give each of its {crowded.taken} {crowded.table} rows its own [{crowded.start}, "
            f"{crowded.end}) range: the check bounds hold {crowded.room}, and rows sharing one would be refused by "
            "the exclusion (23P01 errors from verify's own rows, not from access control)", field=at,
            fix=f"widen the bounds to hold {2 * crowded.taken} ranges{crowded.example}")
    return None

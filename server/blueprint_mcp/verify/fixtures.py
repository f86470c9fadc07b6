"""Fixture rows: the values a row needs, kept inside every check and distinct on every unique key.

A world's rows must all insert, or the matrix judges rows that do not exist. So a fixture row
gets, for each unique key of its table, a NULL where the key lets NULLs through, else values
no earlier row of the table holds (the next value of the column's domain, or another referenced
row, made on demand as a "support" row). When no choice is left, the row is still inserted and
PostgreSQL's refusal is reported as a fixture failure: never silently skipped.
"""

from __future__ import annotations

import itertools
import re
from contextlib import contextmanager
from contextvars import ContextVar
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation

from ..audit.rules.common import client_write_columns
from ..model.schema import Column, ForeignKey, Table
from ..sql.ident import literal, qname
from .oracle import from_literal
from .values import (Domain, comparisons, domain, enum_labels, literal_text, ordered_columns, ordered_value,
                     requirements)
from .world import SIGNUP, Implicit, Row, World, fixture_id, insert_sql, pk_key, signup_sql, stable_id, where_key

MARKER = "blueprint-verify-marker"
MAX_TRIES = 20_000  # combinations tried for one row before leaving it to PostgreSQL to refuse
SUPPORT_BASE = 7000  # fixture numbers of support rows (matrix rows count from 1, hopper rows from 5000)
# How deep support rows may nest: a support row whose own key needs a support row, and so on. A table referencing
# itself inside a unique key (a row pointing at another row of its kind) would otherwise ask for one forever.
MAX_SUPPORT_DEPTH = 3
_support_depth: ContextVar[int] = ContextVar("support_depth", default=0)


def value_for(table: Table, col: Column, n: int, enums: dict[str, list[str]], world: World | None = None) -> str:
    """A literal that fits the column's type, checks and listed values (row number n flavours it; the world
    places bounded ranges)."""
    if (slot := ordered_value(table, col, n, world)) is not None:
        return slot
    # An empty domain (checks no value passes) is left to PostgreSQL to refuse, and reported.
    return domain(table, col, enums).value(0, n, table.name, col.name) or "null"


def row_values(table: Table, org: str | None, world: World, author: str, n: int,
               enums: dict[str, list[str]], with_id: bool, fill_optional: bool = False) -> dict[str, str]:
    """Column -> literal for a row of `table` in `org` written by `author`.

    Only what a client must send: NOT NULL columns without a default, NOT NULL references
    (into the same organisation; users are the author), the tenant key, and the id for fixtures.
    Fixture rows (with_id) are also made distinct on every unique key of the table. `fill_optional`: the
    nullable columns without a default too (a check may ask for one: Basejump's team account needs a slug).
    """
    references: dict[str, str] = {}
    for fk in table.foreign_keys:
        target = None if fk.ref_schema == "auth" else _ref_rows(world, fk, org, table)[:1]
        for col, ref_col in zip(fk.columns, fk.ref_columns):
            if col == table.tenant_key:
                continue
            if fk.ref_schema == "auth":
                # anon has no user: name an existing one, so only access control can stop the write.
                references[col] = literal(world.actor_id(author) or world.actor_id(world.who("outsider")))
            elif target and ref_col in target[0].key:
                references[col] = target[0].key[ref_col]
    values: dict[str, str] = {}
    for col in table.columns:
        slot = ordered_value(table, col, n, world)
        if col.name == table.tenant_key and org:
            values[col.name] = literal(world.orgs[org])
        elif col.name == "id" and with_id and col.name not in references:
            values["id"] = fixture_id(table, org or "global", author, str(n))
        elif (col.name in references and not with_id and col.default and "auth.uid()" in col.default
              and _is_auth_ref(table, col.name)):
            # A client leaves the author to its default (and may not write it): the value is known (unique
            # keys see it) but not sent.
            values[col.name] = Implicit(references[col.name])
        elif col.name in references and (not col.nullable or fill_optional
                                         or (with_id and _is_auth_ref(table, col.name))):
            # Fixture rows also name their author in optional user columns (events.user_id...).
            values[col.name] = references[col.name]
        elif slot is not None:
            # Compared or ranged columns always get the row's own slot, even where a default or a NULL
            # would do: equal defaults (now()) or NULL bounds (an unbounded range) would overlap.
            values[col.name] = slot
        elif (not col.nullable or (fill_optional and col.name != table.tenant_key)) and col.default is None:
            values[col.name] = value_for(table, col, n, enums, world)
        elif with_id and col.default and "clock_timestamp()" in col.default:
            # verify runs in one transaction, whose now() every case's rows take: a fixture stamped by the clock
            # would read as written after them (a membership change after the invitations a case sends). Fixtures
            # are the world's past.
            values[col.name] = f"'2001-01-01'::timestamptz + interval '{n} seconds'"
        elif with_id and col.default and "auth.uid()" in col.default:
            # Fixtures are written without a JWT: give them what the author's request would have.
            values[col.name] = literal(world.actor_id(author) or world.actor_id(world.who("outsider")))
        elif col.default and "auth.uid()" in col.default:
            # A client's insert leaves it to the default: the caller's id (unique keys see it), not sent.
            uid = world.actor_id(author)
            values[col.name] = Implicit(literal(uid) if uid else "null")
    meet_requirements(table, org, world, author, n, enums, values)
    if with_id:
        make_distinct(table, org, world, author, n, enums, values, support=True)
        meet_requirements(table, org, world, author, n, enums, values)
    return values


def meet_requirements(table: Table, org: str | None, world: World, author: str, n: int, enums: dict[str, list[str]],
                      values: dict[str, str]) -> None:
    """Fill or empty what the table's `requires` checks ask of a row of this kind (a review's rating, none on a
    reply), once the row's kind is settled; again while a rule's filling settles another rule's condition. A
    reference to fill names the first row of its table in `org`."""
    rules = requirements(table)
    for _ in range(len(rules) + 1):
        before = dict(values)
        for rule in _applying(table, values, rules):
            for name in rule.empty:  # sent as NULL where the row had a value or the column has a default
                if name in values or ((column := table.column(name)) is not None and column.default is not None):
                    values[name] = "null"
            for name in rule.filled:
                if name not in values or _is_null(values[name]):
                    _fill(table, org, world, author, n, enums, values, name)
        if values == before:
            return


def _applying(table: Table, values: dict[str, str], rules: list | None = None) -> list:
    """The table's `requires` rules a row with these values is held to."""
    out = []
    for rule in requirements(table) if rules is None else rules:
        col = table.column(rule.column)
        held = values.get(rule.column, col.default if col is not None else None)
        if rule.applies(None if _is_null(held) else held):
            out.append(rule)
    return out


def _fill(table: Table, org: str | None, world: World, author: str, n: int, enums: dict[str, list[str]],
          values: dict[str, str], name: str) -> None:
    fk = next((fk for fk in table.foreign_keys if name in fk.columns), None)
    if fk is None:
        if (column := table.column(name)) is not None:
            values[name] = value_for(table, column, n, enums, world)
        return
    if fk.ref_schema == "auth":
        values[name] = literal(world.actor_id(author) or world.actor_id(world.who("outsider")))
        return
    # A tenant entity's reference is (organization_id, ref): the referenced row of the same organisation.
    target = _ref_rows(world, fk, org, table)[:1]
    ref_col = dict(zip(fk.columns, fk.ref_columns))[name]
    if target and ref_col in {**target[0].values, **target[0].key}:
        values[name] = {**target[0].values, **target[0].key}[ref_col]


def _is_null(value: object) -> bool:
    return value is None or str(value).strip().lower() == "null"


def holds(table: Table, values: dict[str, str], columns: Iterable[str]) -> bool:
    """Whether the table's `requires` rules let this row keep `columns` as they are."""
    for rule in _applying(table, values):
        for name in columns:
            if (name in rule.empty and not _is_null(values.get(name))) or \
                    (name in rule.filled and _is_null(values.get(name))):
                return False
    return True


_HOLDS = {"<": lambda x, y: x < y, "<=": lambda x, y: x <= y, ">": lambda x, y: x > y, ">=": lambda x, y: x >= y,
          "<>": lambda x, y: x != y}


def meet_comparisons(table: Table, values: dict[str, str], keep: Iterable[str]) -> None:
    """Move the integers a check compares (`a < b`) that a case did not set (`keep`) to values their own bounds
    allow and that hold every comparison against the row's others (red team 28: a row outside `where b = 2` took
    b = 1 while a kept 1, and `a < b` refused the row: 23514s hid a leak among them). Rows it cannot settle stay."""
    keep = set(keep)
    rules = comparisons(table)

    def broken(row: dict[str, str], a: str, op: str, b: str) -> bool:
        try:
            x, y = int(from_literal(row.get(a, "null")) or ""), int(from_literal(row.get(b, "null")) or "")
        except ValueError:
            return False  # NULL (passes a check), or not an integer
        return not _HOLDS[op](x, y)
    for a, op, b in rules:
        if not broken(values, a, op, b):
            continue
        for name in (x for x in (a, b) if x not in keep):
            col = table.column(name)
            dom = domain(table, col, {}) if col is not None else None
            if dom is None or dom.kind != "integer" or dom.lo is None or dom.hi is None or dom.hi - dom.lo > 1000:
                continue
            fits = next((str(v) for v in range(int(dom.lo), int(dom.hi) + 1)
                         if not any(broken({**values, name: str(v)}, *r) for r in rules if name in (r[0], r[2]))),
                        None)
            if fits is not None:
                values[name] = fits
                break


def admit(table: Table, org: str | None, world: World, author: str, values: dict[str, str],
          columns: Iterable[str], n: int = 8000) -> dict[str, str] | None:
    """`values` as a row that may hold `columns` as they are: itself, its other fields settled, when the rules
    allow it, else the same row of another kind (the rule's column moved to a listed value outside it, or NULL,
    and settled again), so a case that points a reference a reply must leave empty is tried on a review instead
    of not at all. None when no kind allows it."""
    columns = list(columns)
    enums = enum_labels(world.schema) if world.schema else {}
    settled = dict(values)
    meet_requirements(table, org, world, author, n, enums, settled)
    meet_comparisons(table, settled, columns)
    if holds(table, settled, columns) and all(settled.get(c) == values.get(c) for c in columns):
        return settled
    for rule in _applying(table, values):
        col = table.column(rule.column)
        if col is None:
            continue
        dom = domain(table, col, enums)
        options = [literal(v) + (f"::{col.type}" if col.type.startswith("public.") else "")
                   for v in (dom.labels if dom.kind == "listed" else ("true", "false") if dom.kind == "boolean"
                             else ())]
        options += ["null"] if col.nullable else []
        for option in options:
            if not _is_null(option) and literal_text(option) in rule.values:
                continue
            trial = {**values, rule.column: option}
            meet_requirements(table, org, world, author, n, enums, trial)
            if holds(table, trial, columns) and all(trial.get(c) == values.get(c) for c in columns):
                return trial
    return None


# What the server writes on every table (docs/lifecycle.md): a client's insert never sends them.
SERVER_COLUMNS = ("id", "created_at", "updated_at", "archived_at")


def insert_values(table: Table, org: str | None, world: World, author: str, n: int,
                  enums: dict[str, list[str]]) -> dict[str, str]:
    """What a client's insert sends: a row like a fixture's, distinct from the fixtures where it can be."""
    values = row_values(table, org, world, author, n, enums, with_id=False)
    make_distinct(table, org, world, author, n, enums, values, support=False)
    meet_requirements(table, org, world, author, n, enums, values)
    # The server sets these (a client may not write them): known for unique keys, never sent. So are the
    # columns the client role's insert grant leaves out where the table gives them a default or lets them be
    # empty (a blueprint's server_set fields).
    withheld = set(SERVER_COLUMNS) | {c.name for c in table.columns if c.name not in client_writable(table, "insert")
                                      and (c.default is not None or c.nullable)}
    for col in withheld:
        if col in values:
            values[col] = Implicit(values[col])
    return values


def client_writable(table: Table, privilege: str) -> set[str]:
    """The columns authenticated may write with `privilege` (insert, update) by the table's column grants; every
    column where a grant of the whole privilege says so, or where there is no such grant (nothing to narrow)."""
    listed = client_write_columns(table, privilege, ("authenticated",))
    return set(listed) if listed else {c.name for c in table.columns}


def clearing_sql(table: Table, values: dict[str, str], world: World, orphans: bool = False) -> str | None:
    """Deletes the fixture rows an insert of `values` would meet on a unique key (the owner column
    of a one-row-per-user key cannot change), or None when there are none. `orphans`: for a setup whose case
    then deletes something (an account), the rows naming the cleared ones go too."""
    rows = clashing_rows(table, values, world)
    if not rows:
        return None
    # Rows that reference the cleared ones (restrict by default) would refuse the delete: foreign keys
    # are not checked while clearing (replica mode), the insert that follows is checked as usual. Left naming a
    # missing row, such a row fails on its key when a deletion's ON DELETE SET NULL writes it, so a case that
    # deletes clears them (blueprint_tests.clear_orphans). Not for a case that inserts: the row it names may be
    # one of them (a self-reference), and its insert would then be refused on that key, not by access control.
    return replica_delete(table, " or ".join(f"({where_key(r.key)})" for r in rows), orphans=orphans)


def clashing_rows(table: Table, values: dict[str, str], world: World) -> list[Row]:
    """The fixture rows an insert of `values` would meet on a unique key (what clearing_sql deletes)."""
    keys = unique_keys(table)
    return [r for r in world.rows if r.table == table.name and r.key and clashes(table, values, [r.values], keys)]


def taken_with(world: World, cleared: list[Row]) -> set[int]:
    """The rows (by id()) a clearing with orphans takes: the cleared ones, then each row naming a row taken, and
    so on (blueprint_tests.clear_orphans)."""
    taken = {id(r) for r in cleared}
    gone = {from_literal(r.key["id"]) for r in cleared if "id" in r.key}
    grew = True
    while grew:
        grew = False
        for r in world.rows:
            if id(r) not in taken and any(from_literal(v) in gone for v in r.values.values()):
                taken.add(id(r))
                gone |= {from_literal(r.key["id"])} if "id" in r.key else set()
                grew = True
    return taken


def replica_delete(table: Table, where: str, orphans: bool = False) -> str:
    """Deletes the rows `where` selects, triggers and foreign keys aside (replica mode, as superuser);
    `orphans`: and the rows naming them, and theirs (blueprint_tests.clear_orphans, verify's own helper)."""
    name = qname(table.schema_name, table.name)
    cleared = f" select blueprint_tests.clear_orphans({literal(name)}::regclass);" if orphans else ""
    return ("select set_config('session_replication_role', 'replica', true); "
            f"delete from {name} where {where};{cleared} "
            "select set_config('session_replication_role', 'origin', true);")


def add_row(world: World, table: Table, org: str | None, author: str, n: int, enums: dict[str, list[str]],
            purpose: str = "matrix", row_id: str | None = None) -> Row:
    """Plan the insert of one fixture row and return it (`row_id`: the id it must have, one already named)."""
    values = row_values(table, org, world, author, n, enums, with_id=True)
    if not pk_key(table, values):  # no primary key and nothing required: its optional columns pick the row out
        values = row_values(table, org, world, author, n, enums, with_id=True, fill_optional=True)
    if row_id is not None and "id" in values:
        values["id"] = row_id
    author = take_parent_author(table, world, values, author)
    row = Row(table.name, org, author, pk_key(table, values), purpose=purpose, values=values)
    world.add(insert_sql(table, values) + ";", row, fallback=fuller(table, org, world, author, n, enums, values))
    return row


def fuller(table: Table, org: str | None, world: World, author: str, n: int, enums: dict[str, list[str]],
           values: dict[str, str]) -> tuple[str, dict[str, str]] | None:
    """The same row with its optional columns filled (its insert, its values), to try when PostgreSQL refuses
    the lean one (a check across columns may want a value where the lean row leaves NULL); None when there
    is nothing to add."""
    full = row_values(table, org, world, author, n, enums, with_id=True, fill_optional=True)
    full.update(values)
    return (insert_sql(table, full) + ";", full) if set(full) - set(values) else None


def side_of(table: Table) -> list[str] | None:
    """(owner column, reference, parent table) of a private side table, read from the arguments of the trigger
    that gives its rows their parent's author; None for other tables."""
    return next((trg.args for trg in table.triggers if trg.function.endswith("_take_author")), None)


def take_parent_author(table: Table, world: World, values: dict[str, str], author: str) -> str:
    """A private side row's author is its parent row's, whoever inserts it (its take_author trigger sets the
    owner column): the fixture row says so too. Other tables' rows keep `author`."""
    args = side_of(table)
    if not args or args[1] not in values:
        return author
    owner, ref, parent_table = args[0], args[1], args[2]
    parent = next((r for r in world.rows if r.table == parent_table and r.key.get("id") == values[ref]), None)
    if parent is None or parent.author is None:
        return author
    uid = world.actor_id(parent.author)
    if owner in values:
        values[owner] = literal(uid) if uid else "null"
    return parent.author


def for_own_parent(table: Table, world: World, values: dict[str, str], author: str,
                   org: str | None) -> tuple[dict[str, str], str | None] | None:
    """A private side row's insert values pointing at a parent row `author` wrote in `org` (a side row takes
    its parent's author), and the SQL that first clears the side row already holding that parent (one per
    parent); None for other tables, when `values` already point at a row of theirs, or when they wrote none."""
    args = side_of(table)
    if not args or any(r.table == args[2] and r.key.get("id") == values.get(args[1]) and r.author == author
                       for r in world.rows):
        return None
    parent = next((r for r in world.rows if r.table == args[2] and r.org == org and r.author == author
                   and r.purpose == "matrix" and "id" in r.key), None)
    if not parent:
        return None
    values = {**values, args[1]: parent.key["id"]}
    return values, clearing_sql(table, values, world)


def marker_for(table: Table, col: Column, enums: dict[str, list[str]]) -> str:
    """A value for a write without WHERE that no fixture row holds ("~" is never in a fixture value)."""
    d = domain(table, col, enums)
    text = MARKER
    if d.max_len is not None and len(text) > d.max_len:
        text = "~" * max(d.min_len, 1)
    return literal(text.ljust(d.min_len, "~"))


def _is_auth_ref(table: Table, column: str) -> bool:
    return any(fk.ref_schema == "auth" and column in fk.columns for fk in table.foreign_keys)


def _ref_rows(world: World, fk: ForeignKey, org: str | None, table: Table | None = None) -> list[Row]:
    """Rows `fk` may point at: the organisation's own first, then any (global targets have no organisation).
    A member reference limited to roles points only at members holding one of them."""
    same_org = [r for r in world.rows if r.table == fk.ref_table and r.org == org]
    roles = member_roles_of(table, fk) if table is not None else None
    if roles is not None:
        return [r for r in same_org if world.actors[r.author].memberships.get(org) in roles]
    return same_org or [r for r in world.rows if r.table == fk.ref_table]


def member_roles_of(table: Table, fk: ForeignKey) -> list[str] | None:
    """The roles a member reference is limited to, read from its role-check trigger's arguments."""
    if fk.ref_table != "organization_members":
        return None
    col = fk.columns[-1]
    for trg in table.triggers:
        if trg.function.endswith("check_member_role") and trg.args[:1] == [col]:
            return trg.args[1:]
    return None


# --- unique keys ----------------------------------------------------------------------------------

def unique_keys(table: Table) -> list[tuple[list[str], bool]]:
    """(columns, nulls not distinct) of every key a fixture row must not repeat (those with the id cannot)."""
    keys = [(k.columns, k.nulls_not_distinct) for k in table.constraints
            if k.kind in ("primary key", "unique") and "id" not in k.columns]
    # Partial unique indexes too: fixture rows sit inside their WHERE as often as not.
    return keys + [(ix.columns, False) for ix in table.indexes if ix.unique and "id" not in ix.columns]


_NOW = ("now()", "current_timestamp", "transaction_timestamp()", "current_date")
VOLATILE_DEFAULTS = ("gen_random_uuid(", "uuid_generate_", "nextval(", "random(", "clock_timestamp(")


def _cell(table: Table, values: dict[str, str], column: str) -> str | None:
    """What a row holds in `column`, comparable across rows: its literal or the column default, without
    a trailing cast, numbers normalised ("2.0" and "2::numeric" are the same value). None when it
    differs on every row (a volatile default such as gen_random_uuid())."""
    col = table.column(column)
    if column not in values and col is not None and col.default and any(v in col.default for v in VOLATILE_DEFAULTS):
        return None
    text = values.get(column, "null" if col is None or col.default is None else col.default)
    text = re.sub(r"::[a-z_\"][a-z0-9_. \"]*$", "", text.strip(), flags=re.I)  # type names may hold digits
    if col is not None and col.type in ("boolean", "bool"):  # 'false' (a requires rule's) is false (random fuzz)
        word = text.strip("'").lower()
        text = "true" if word in ("true", "t", "yes", "y", "on", "1") else \
            "false" if word in ("false", "f", "no", "n", "off", "0") else text
    if text.lower() in _NOW:  # one instant in verify's single transaction, however it is spelled
        if col is not None and col.type == "date":
            return "current_date"
        if text.lower() != "current_date":
            return "now()"
    try:
        return str(Decimal(text).normalize())
    except InvalidOperation:
        return text


def clashes(table: Table, values: dict[str, str], peers: list[dict[str, str]],
             keys: list[tuple[list[str], bool]]) -> bool:
    for columns, nulls_not_distinct in keys:
        mine = [_cell(table, values, c) for c in columns]
        if None in mine or ("null" in mine and not nulls_not_distinct):
            continue
        if any([_cell(table, p, c) for c in columns] == mine for p in peers):
            return True
    return False


def make_distinct(table: Table, org: str | None, world: World, author: str, n: int,
                   enums: dict[str, list[str]], values: dict[str, str], support: bool) -> None:
    keys = unique_keys(table)
    # Compared and ranged columns hold the row's own slot, distinct per row already: moving one would
    # break the comparison or make exclusion ranges overlap. A live row's archived_at stays NULL: set to
    # make a key distinct, it archived the matrix rows, and every delete of them looked like it worked.
    users = {c for fk in table.foreign_keys if fk.ref_schema == "auth" for c in fk.columns}
    fixed = {table.tenant_key, "archived_at"} | users | set(ordered_columns(table))
    # A field the row's kind asks filled (requires) may change to dodge a key, never be emptied (the rule would
    # fill it again, with the clashing value).
    filled = {c for rule in _applying(table, values) for c in rule.filled}
    # An optional user column that is not the author's (no auth.uid() default) may still be left empty.
    optional_users = {c for c in users if (col := table.column(c)) is not None and col.nullable
                      and "auth.uid()" not in (col.default or "")}
    for c in dict.fromkeys(c for columns, _ in keys for c in columns):
        col = table.column(c)
        # Key columns never rest on a default: `now()` and `current_date` would compare as
        # different texts yet be one value. (Volatile defaults differ on every row anyway.)
        if col is not None and c not in values and c not in fixed and not col.nullable and col.default \
                and not any(v in col.default for v in VOLATILE_DEFAULTS):
            values[c] = value_for(table, col, n, enums, world)
    peers = [r.values for r in world.rows if r.table == table.name]
    if not keys or not clashes(table, values, peers, keys):
        return
    # A NULL in a key column lets the row through (unless the key says NULLs are not distinct).
    for columns, nulls_not_distinct in keys:
        free = [c for c in columns if (c not in fixed or c in optional_users) and c not in filled
                and (col := table.column(c)) is not None and col.nullable]
        if free and not nulls_not_distinct:
            values[free[0]] = "null"
    if not clashes(table, values, peers, keys):
        return
    if support:  # a fixture row (a case's insert names its caller, and a clash there is cleared, not dodged)
        _distinct_users(table, world, values, peers, keys, users - optional_users, n, len(peers) + 2)
        if not clashes(table, values, peers, keys):
            return
    choices = [list(_choices(table, org, world, author, enums, unit, n, len(peers) + 2, i, support))
               for i, unit in enumerate(_units(table, keys, fixed, values))]
    if not _first_distinct(table, values, peers, keys, choices):
        _distinct_unit_by_unit(table, values, peers, keys, choices)


def _first_distinct(table: Table, values: dict[str, str], peers: list[dict[str, str]], keys,
                    choices: list[list[dict]]) -> bool:
    """Take the first combination of choices (one per unit) with which the row clashes on no key: its values go
    into `values` and the support rows it needs are added. False when none within MAX_TRIES does."""
    for tries, combo in enumerate(itertools.product(*choices)):
        if tries >= MAX_TRIES:
            break
        trial = dict(values)
        for part in combo:
            trial.update(_choice_values(part))
        if not clashes(table, trial, peers, keys):
            for part in combo:
                if "__support__" in part:
                    part["__support__"]()
            values.update(trial)
            return True
    return False


def _distinct_users(table: Table, world: World, values: dict[str, str], peers: list[dict[str, str]], keys,
                    users: set[str], n: int, count: int) -> None:
    """A key that holds a required user column other than the author's (a global table's reference to auth.users,
    one row per user) is freed by naming another user there: each actor, then users signed up for the fixture
    alone (no membership, no part in any case). The other columns of such keys are left to the caller."""
    named = [c for c in dict.fromkeys(c for columns, _ in keys for c in columns) if c in users
             and "auth.uid()" not in ((col := table.column(c)) is not None and col.default or "")]
    keys = [key for key in keys if set(key[0]) <= set(named) | {table.tenant_key}]
    if not named or not keys or not clashes(table, values, peers, keys):
        return
    actors = [literal(a.user_id) for a in world.actors.values() if a.user_id]
    signed_up = sum(s.startswith(SIGNUP) for s in world.statements)  # a dry run's are taken back with it

    def spare(k: int, c: str) -> dict:
        uid = stable_id("spare user", str(k))
        return {c: literal(uid), "__support__": lambda: world.add(spare_user_sql(uid))}
    _first_distinct(table, values, peers, keys, [[{c: v} for v in actors] + [spare(signed_up + i * count + j, c)
                                                                             for j in range(count)]
                                                 for i, c in enumerate(named)])


def spare_user_sql(uid: str) -> str:
    """A user signed up only to be named where a fixture row needs one more distinct user."""
    return signup_sql(uid, f"spare-{uid[:8]}@example.com", {})


def _choice_values(part: dict) -> dict[str, str]:
    """A choice's column values, without its `__support__` (the row it would add if taken)."""
    return {c: v for c, v in part.items() if not c.startswith("__")}


def _distinct_unit_by_unit(table: Table, values: dict[str, str], peers: list[dict[str, str]], keys,
                           choices: list[list[dict]]) -> None:
    """When trying combinations runs out (many keys, each with its own values to try: the product grows past
    MAX_TRIES before the first unit moves), settle one unit at a time: each takes the first choice that leaves the
    fewest keys clashing, so a key only one unit can free (one personal-data row per row) is freed too."""
    def clashing(trial: dict[str, str]) -> int:
        return sum(clashes(table, trial, peers, [key]) for key in keys)

    trial, chosen = dict(values), []
    for options in choices:
        best, best_count = None, clashing(trial)
        for part in options:
            candidate = {**trial, **_choice_values(part)}
            count = clashing(candidate)
            if count < best_count:
                best, best_count = part, count
                if count == 0:
                    break
        if best is not None:
            trial.update(_choice_values(best))
            chosen.append(best)
        if best_count == 0:
            break
    if clashes(table, trial, peers, keys):
        return  # no row here can be distinct: PostgreSQL will say which key, as a fixture failure
    for part in chosen:
        if "__support__" in part:
            part["__support__"]()
    values.update(trial)


def _units(table: Table, keys, fixed: set[str], values: dict[str, str]) -> list[object]:
    """What may vary in the clashing keys: a column, or a foreign key (its columns change together)."""
    out: list[object] = []
    for columns, nulls_not_distinct in keys:
        for c in columns:
            if c in fixed or values.get(c) == "null" and not nulls_not_distinct:
                continue
            fk = next((fk for fk in table.foreign_keys if c in fk.columns and fk.ref_schema != "auth"), None)
            unit = fk if fk is not None else c
            if unit not in out:
                out.append(unit)
    return out


def _choices(table: Table, org: str | None, world: World, author: str, enums: dict[str, list[str]],
             unit: object, n: int, count: int, salt: int, support: bool) -> Iterator[dict]:
    """Candidate values for one unit: the column's first `count` domain values, or the rows an FK may
    point at and then a new support row."""
    if isinstance(unit, str):
        d: Domain = domain(table, table.column(unit), enums)
        for j in range(count):
            if (v := d.value(j, n, table.name, unit)) is not None:
                yield {unit: v}
        return
    fk: ForeignKey = unit  # type: ignore[assignment]
    for row in _ref_rows(world, fk, org, table):
        yield {c: row.key[rc] for c, rc in zip(fk.columns, fk.ref_columns) if c != table.tenant_key and rc in row.key}
    target = world.schema.table(fk.ref_table, fk.ref_schema) if world.schema and support else None
    if target is None:
        return
    target_org = org if target.tenant_key is not None else None
    number = SUPPORT_BASE + 10 * len(world.rows) + salt
    # Written by the row's author where the new row can be distinct on its own keys, else by another member
    # of the organisation (a key over the author's id, one row per user, admits no second row of theirs);
    # with no such writer there is no support row to offer: one that PostgreSQL refuses helps nobody.
    writer = next((who for who in _support_writers(world, author, target_org)
                   if _support_fits(world, target, target_org, who, number, enums)), None)
    if writer is None:
        return
    key = {"id": fixture_id(target, target_org or "global", writer, str(number))}
    yield {**{c: key[rc] for c, rc in zip(fk.columns, fk.ref_columns) if c != table.tenant_key and rc in key},
           "__support__": lambda: _add_support(world, target, target_org, author, writer, number, enums, key["id"])}


def _add_support(world: World, target: Table, org: str | None, author: str, writer: str, n: int,
                 enums: dict[str, list[str]], row_id: str) -> None:
    """Add a support row under the id already named. Its writer was chosen before the row's other support rows
    were added: where one of them took that writer's only place on a key (two references of one row to a table
    holding one row per user), another writer fits now (random fuzz: both support rows named the same user)."""
    if not _support_fits(world, target, org, writer, n, enums):
        writer = next((who for who in _support_writers(world, author, org)
                       if _support_fits(world, target, org, who, n, enums)), writer)
    _nested(add_row, world, target, org, writer, n, enums, "support", row_id)


def _nested(add, *args) -> None:
    """Add a support row one level deeper: the rows it needs in turn count against MAX_SUPPORT_DEPTH."""
    with _deeper():
        add(*args)


@contextmanager
def _deeper() -> Iterator[None]:
    token = _support_depth.set(_support_depth.get() + 1)
    try:
        yield
    finally:
        _support_depth.reset(token)


def _support_writers(world: World, author: str, org: str | None) -> list[str]:
    """Who may write a support row: the author first, then the organisation's other members (anyone for a
    global table)."""
    others = [name for name, actor in world.actors.items() if name != author and actor.user_id
              and (org is None or org in actor.memberships)]
    return [author, *others]


def _support_fits(world: World, table: Table, org: str | None, author: str, n: int,
                  enums: dict[str, list[str]]) -> bool:
    """Whether a support row of `table` by `author` can be distinct on every unique key. A dry run: the rows
    it would add itself (support rows of its own references) are taken back."""
    if _support_depth.get() >= MAX_SUPPORT_DEPTH:
        return False
    rows, statements = len(world.rows), len(world.statements)
    try:
        with _deeper():
            values = row_values(table, org, world, author, n, enums, with_id=True)
        peers = [r.values for r in world.rows[:rows] if r.table == table.name]
        return not clashes(table, values, peers, unique_keys(table))
    finally:
        world.take_back(rows, statements)

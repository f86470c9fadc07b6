"""Fixture rows that put every row condition of the grants to the test.

The base fixtures (a row per organisation and author) leave most conditions on one side: every
row unpublished, unassigned, linked to nobody. For each entity these rows add, in org1, a row on
each side of every `where` (a value the grant lists and one it does not), a row assigned to a
member of each allowed role, a row linked to the portal user through every `linked` chain, and a
row under each parent row of every `under`, so the matrix judges both outcomes of every condition.
"""

from __future__ import annotations

from collections.abc import Callable

from ..model import Blueprint, FieldType
from ..model.access import COMMANDS, Grant, Match
from ..model.blueprint import integer_bounds
from ..model.meaning import command_grants, link_columns, linked_hops
from ..model.schema import Schema
from ..sql.ident import ident, literal, qname
from .fixtures import admit, clashes, clearing_sql, unique_keys
from .oracle import from_literal
from .world import Row, World, insert_sql, pk_key, where_key

INT_MIN, INT_MAX = -2**31, 2**31 - 1  # an integer column (bigint is wider; this range fits both)
PORTAL = "portal"  # a signed-in user who belongs to no organisation, linked to rows through chains

MakeValues = Callable[..., dict[str, str]]


def grants_of(bp: Blueprint, entity) -> list[Grant]:
    return [g for c in COMMANDS for g in command_grants(bp, entity, c)]


def needs_portal(bp: Blueprint) -> bool:
    return any(g.linked for e in bp.entities for g in grants_of(bp, e))


def other_value(bp: Blueprint, entity, m: Match) -> object | None:
    """A value of the column that the condition does not list, if the column has one."""
    f = entity.field(m.column)
    listed = {str(v).lower() for v in m.values}
    if f.type is FieldType.boolean:
        left = [v for v in (True, False) if str(v).lower() not in listed]
    elif f.type is FieldType.enum:
        left = [v for v in f.values or [] if v not in listed]
    elif f.type in (FieldType.integer, FieldType.bigint):
        left = _other_integer({int(v) for v in m.values}, *integer_bounds(entity).get(m.column, (None, None, set())))
    else:
        left = _other_text(listed, f.check)
    return left[0] if left else None


def _other_integer(listed: set[int], low: int | None, high: int | None, excluded: set[int]) -> list[int]:
    """An integer the column's bounds admit that is not listed: its check, narrowed by the entity's comparisons
    with other columns (red team 25: `max + 1` broke `check: {max: 1}`; red team 28: a value `two <> shared` left
    out; the 23514 errors hid a leak among them). Between bounds, the first gap from the low bound is among
    len(listed) + len(excluded) + 1 integers there."""
    taken = listed | excluded
    tries = [max(listed) + 1, min(listed) - 1]
    if low is not None:
        tries += range(low, low + len(taken) + 1)
    elif high is not None:
        tries += range(high, high - len(taken) - 1, -1)
    return [n for n in tries if n not in taken and (low is None or n >= low) and (high is None or n <= high)
            and INT_MIN <= n <= INT_MAX][:1]


def _other_text(listed: set[str], check) -> list[str]:
    """A text the field's check admits (its lengths) that is not listed."""
    shortest = check.min_length or 1 if check is not None else 1
    longest = check.max_length if check is not None and check.max_length is not None else 64
    tries = ["fixture-not-listed", *(c * n for n in range(max(shortest, 1), longest + 1) for c in "zqx")]
    return [t for t in tries if t.lower() not in listed and shortest <= len(t) <= longest][:1]


def _sql_value(value: object, enum_type: str | None) -> str:
    text = literal(value)
    return f"{text}::{enum_type}" if enum_type else text


def condition_rows(bp: Blueprint, schema: Schema, w: World, enums: dict[str, list[str]], make: MakeValues,
                   writer: str, start: int) -> None:
    """Add the rows described in the module docstring (statements and Rows) to the world."""
    n = start
    linked_rows: dict[tuple[str, tuple[str, ...]], Row] = {}
    links = link_columns(bp)

    def add(table_name: str, overrides: dict[str, str], author: str = writer) -> Row | None:
        nonlocal n
        n += 1
        t = schema.table(table_name)
        peers = [r.values for r in w.rows if r.table == t.name]
        # The writer first; under a key the writer's rows fill (one row per author), another member of org1.
        # (Not the hopper: its own org1 rows come later, as the org-hopping targets.)
        others = [a.name for a in w.actors.values()
                  if "org1" in a.memberships and a.name not in (author, w.who("hopper"))]
        for who in [author] + others:
            values = make(t, "org1", w, who, n, enums, with_id=True)
            values.update(overrides)
            # A reply's rating goes with its kind; a status a kind must leave empty moves the row to another kind.
            values = admit(t, "org1", w, who, values, list(overrides), n)
            if values is not None and not clashes(t, values, peers, unique_keys(t)):
                break
        else:
            return None  # no author leaves room: the key allows no further row
        row = Row(t.name, "org1", who, pk_key(t, values), values=values)
        w.add(insert_sql(t, values) + ";", row)
        return row

    for e in bp.entities:
        if not e.is_tenant:
            continue
        t = schema.table(e.name)
        grants = grants_of(bp, e)
        seen: set[tuple] = set()
        for g in grants:
            if g.where is not None:
                col = g.where.column
                col_type = t.column(col).type
                enum_type = col_type if col_type.startswith("public.") else None
                for value in [*g.where.values, other_value(bp, e, g.where)]:
                    if value is None or (col, str(value)) in seen:
                        continue
                    seen.add((col, str(value)))
                    add(e.name, {col: _sql_value(value, enum_type)})
            if g.assigned:
                f = e.field(g.assigned)
                roles = f.member_roles or [r.name for r in bp.tenancy.roles]
                for role in roles:
                    if ("assigned", g.assigned, role) in seen or role not in w.actors:
                        continue
                    seen.add(("assigned", g.assigned, role))
                    add(e.name, {g.assigned: literal(w.actor_id(role))})
            if g.linked and w.who(PORTAL) and (e.name, tuple(g.linked)) not in linked_rows:
                row = _linked_row(bp, e, g.linked, add, linked_rows, w)
                if row is not None:
                    linked_rows[(e.name, tuple(g.linked))] = row
                # And one through an archived row at each soft-deleted hop: it links nobody (docs/access.md A10).
                # The row meets the grant's own condition, so only the archived link stands in the way.
                met = {}
                if g.where is not None:
                    col_type = t.column(g.where.column).type
                    met = {g.where.column: _sql_value(g.where.values[0],
                                                      col_type if col_type.startswith("public.") else None)}
                for k, (hop, _) in enumerate(linked_hops(bp, e, g.linked)[1:], start=1):
                    if hop.soft_delete:
                        _linked_row(bp, e, g.linked, add, {}, w, archived=k, top=met)
        for col in sorted(links.get(e.name, ())):
            f = e.field(col)
            if f is not None and f.nullable:
                # A row whose link is empty: pointing it somewhere is re-linking too (clear first, then set).
                add(e.name, {col: "null"})
    # A row naming one the portal user reaches by another chain from the same entity: its own chain does not end
    # at them (red team 21: two chains' helpers shared a name, and one answered for the other, unseen).
    crossed: set[tuple] = set()
    for e in bp.entities if w.who(PORTAL) else ():
        for chain in dict.fromkeys(tuple(g.linked) for g in grants_of(bp, e) if e.is_tenant and g.linked
                                   and len(g.linked) > 1):
            target = linked_hops(bp, e, list(chain))[1][0].name
            for (name, other), row in list(linked_rows.items()):
                if name == target and other != chain[1:] and "id" in row.key \
                        and (e.name, chain[0], row.key["id"]) not in crossed:
                    crossed.add((e.name, chain[0], row.key["id"]))
                    add(e.name, {chain[0]: row.key["id"]})
    # Last, once every parent has its rows on each side of its own conditions: a row under each of them.
    for e in bp.entities:
        refs = dict.fromkeys(g.under for g in grants_of(bp, e) if g.under) if e.is_tenant else {}
        refs.update(dict.fromkeys(g.visible for g in grants_of(bp, e) if g.visible))
        for ref in refs:
            parent = e.field(ref).references
            for row in [r for r in w.rows if r.table == parent and r.org in ("org1", None) and r.purpose == "matrix"
                        and "id" in r.key]:
                add(e.name, {ref: row.key["id"]})


ARCHIVED_LINK = "'2001-07-01 00:00:00+00'::timestamptz"  # archived before 2002, as fixture rows are (matrix.py)


def _linked_row(bp: Blueprint, e, chain: list[str], add, memo: dict, w: World,
                archived: int | None = None, top: dict[str, str] | None = None) -> Row | None:
    """A row of `e` whose chain ends at the portal user, adding the rows it points through; `archived`: the hop
    (1: the row the chain's first column names) whose row is archived, fresh rows all along (`memo` empty);
    `top`: more values of the row of `e` itself."""
    gone = {"archived_at": ARCHIVED_LINK} if archived == 0 else {}
    gone.update(top or {})
    if len(chain) == 1:
        f = e.field(chain[0])
        if f is not None and f.references_member:
            # A member column holds members only: the chain links the least member it admits, not the portal user.
            who = next((r for r in reversed(f.member_roles or [r.name for r in bp.tenancy.roles]) if r in w.actors),
                       None)
            return add(e.name, {chain[0]: literal(w.actor_id(who)), **gone}) if who else None
        if chain[0] == e.owner_column:
            # The chain ends at the row's author: the portal user wrote it (the fixture says so, as the column does).
            return add(e.name, {chain[0]: literal(w.actor_id(w.who(PORTAL))), **gone}, author=w.who(PORTAL))
        return add(e.name, {chain[0]: literal(w.actor_id(w.who(PORTAL))), **gone})
    target = linked_hops(bp, e, chain)[1][0]
    key = (target.name, tuple(chain[1:]))
    inner = memo.get(key)
    if inner is None:
        inner = _linked_row(bp, target, chain[1:], add, memo, w, None if archived is None else archived - 1)
        if inner is None:
            return None
        memo[key] = inner
    return add(e.name, {chain[0]: inner.key["id"], **gone})


# --- cases: rows moved across a condition, rows inserted in someone else's name --------------------

def condition_columns(bp: Blueprint, e, links: dict[str, set[str]] | None = None) -> dict[str, str]:
    """Mutable columns a grant's condition reads: column -> kind (where, assigned, linked); `links`, the columns
    other entities' chains walk through here (linked too); state columns whose moves are listed (state, docs/access.md
    A28), which take every value of the column."""
    out: dict[str, str] = {}
    for g in grants_of(bp, e):
        if g.where is not None:
            out[g.where.column] = "where"
        if g.assigned:
            out[g.assigned] = "assigned"
        if g.linked and g.linked[0] != e.owner_column:
            out[g.linked[0]] = "linked"
    for col in sorted((links or {}).get(e.name, ())):
        out.setdefault(col, "linked")
    for t in e.transitions:
        out[t.column] = "state"
    return out


def _alternatives(bp: Blueprint, e, w: World, table, column: str, kind: str, row: Row) -> list[str]:
    """Literals the column could be set to instead of its current value."""
    current = row.values.get(column)
    field = e.field(column)
    out: list[str] = []
    if kind == "state":  # every value: a move is listed or it is not
        return [v for v in (_typed(table, column, x) for x in field.values or []) if v != current]
    if kind == "where":
        values = [v for g in grants_of(bp, e) if g.where is not None and g.where.column == column for v in g.where.values]
        extra = other_value(bp, e, next(g.where for g in grants_of(bp, e) if g.where and g.where.column == column))
        out = [_typed(table, column, v) for v in dict.fromkeys([*values, *([extra] if extra is not None else [])])]
    elif kind == "assigned" or field.is_user_column:
        if field.references_member:
            names = [r for r in (field.member_roles or [x.name for x in bp.tenancy.roles]) if r in w.actors]
        else:  # any user: the portal user and the org's writer
            names = [n for n in (w.who(PORTAL), bp.tenancy.default_member_role.name) if n and n in w.actors]
        out = [literal(w.actor_id(n)) for n in names]
    else:  # linked: another row of the referenced table in the same organisation
        target = bp.entity(field.references)
        out = [r.key["id"] for r in w.rows if r.table == target.name and r.org == row.org and "id" in r.key][:3]
    if field is not None and field.nullable:
        out.append("null")
    return [v for v in out if v != current][:4]


def _typed(table, column: str, value) -> str:
    """The value as a literal of the column's type: an enum label cast to its type, anything else as it is."""
    col_type = table.column(column).type
    return literal(value) + (f"::{col_type}" if col_type.startswith("public.") else "")


def move_row(t, w: World, r: Row, column: str, value: str) -> tuple[Row, str] | None:
    """The row after setting `column` to `value`, and the update that does it. What the kind of row asks for
    moves with it in the same update (a reply's rating is emptied); a value this kind may not hold moves the row
    to a kind that may (requires). None when no kind may hold it."""
    moved = admit(t, r.org, w, r.author, {**r.values, column: value}, [column])
    if moved is None:
        return None
    sets = {column: value, **{c: v for c, v in moved.items() if c != column and v != r.values.get(c)}}
    sql = (f"update {qname(t.schema_name, t.name)} set "
           f"{', '.join(f'{ident(c)} = {v}' for c, v in sets.items())} where {where_key(r.key)}")
    return Row(r.table, r.org, r.author, r.key, values=moved), sql


def transition_cases(bp: Blueprint, schema: Schema, w: World, oracle, case_type, only: set[str] | None = None) -> list:
    """Every actor tries to move each org1 row across each condition column (where, assignee, link, state):
    allowed only when the grants admit the row both before and after (docs/access.md, update) and a state
    changes along a listed move (A28; the first row is also tried from every state). `only`: these tables."""
    cases = []
    links = link_columns(bp)
    for e in bp.entities:
        if not e.is_tenant or (only is not None and e.name not in only):
            continue
        columns = condition_columns(bp, e, links)
        if not columns:
            continue
        t = schema.table(e.name)
        rows = [r for r in w.rows if r.table == e.name and r.org == "org1" and r.purpose == "matrix"]
        for r in rows:
            for column, kind in columns.items():
                field = e.field(column)
                values = _alternatives(bp, e, w, t, column, kind, r)
                for value in values:
                    if (move := move_row(t, w, r, column, value)) is None:
                        continue
                    after, sql = move
                    for actor in w.actors.values():
                        expected = oracle.expect_transition(actor, e.name, r, after)
                        cases.append(case_type(e.name, f"update {column}", actor.name, r.org, "rows", sql, expected))
                if kind == "state" and r is rows[0]:
                    cases += _moves_from_every_state(e, t, w, r, column, oracle, case_type)
                if kind != "linked" or field is None or not field.is_user_column or field.references_member:
                    continue
                for actor in w.actors.values():  # and each caller points the link at themselves
                    mine = literal(actor.user_id) if actor.user_id else None
                    move = move_row(t, w, r, column, mine) \
                        if mine is not None and mine not in values and mine != r.values.get(column) else None
                    if move is None:
                        continue
                    after, sql = move
                    expected = oracle.expect_transition(actor, e.name, r, after)
                    cases.append(case_type(e.name, f"update {column} to self", actor.name, r.org, "rows", sql,
                                           expected))
    return cases


def _moves_from_every_state(e, t, w: World, r: Row, column: str, oracle, case_type) -> list:
    """A28: the row is first put in each state (as the owner, whom no move binds), then every actor tries every
    move from there: a backward move (shipped -> preparing) is refused, a listed one allowed."""
    labels = [_typed(t, column, x) for x in e.field(column).values or []]
    cases = []
    for start in labels:
        if (placed := move_row(t, w, r, column, start)) is None:
            continue
        before, setup = placed
        for value in labels:
            if value == start or (move := move_row(t, w, before, column, value)) is None:
                continue
            after, sql = move
            for actor in w.actors.values():
                cases.append(case_type(e.name, f"update {column} from {from_literal(start)}", actor.name, r.org,
                                       "rows", sql, oracle.expect_transition(actor, e.name, before, after),
                                       setup=setup))
    return cases


def insert_condition_cases(bp: Blueprint, schema: Schema, w: World, oracle, case_type, insert_values,
                           only: set[str] | None = None) -> list:
    """Every actor inserts an org1 row on each side of every `where` a grant reads: allowed only when an
    insert grant admits the row as written (a staff member filing a review already approved, an author a
    published entry)."""
    cases = []
    n = 7000
    for e in bp.entities:
        if not e.is_tenant:
            continue
        starting = {t.column for t in e.transitions if t.initial}  # (without initial states any value starts)
        columns = {c: kind for c, kind in condition_columns(bp, e).items()
                   if kind == "where" or (kind == "state" and c in starting)}
        if only is not None and e.name not in only:
            n += len(columns) * len(w.actors)  # the kept tables' rows stay as they were
            continue
        t = schema.table(e.name)
        for column, kind in columns.items():
            for actor in w.actors.values():
                n += 1
                values = insert_values(t, "org1", w, actor.name, n)
                base = Row(e.name, "org1", actor.name, {}, values=values)
                for value in _alternatives(bp, e, w, t, column, kind, base):
                    written = admit(t, "org1", w, actor.name, {**values, column: value}, [column], n)
                    if written is None:
                        continue
                    row = Row(e.name, "org1", actor.name, {}, values=written)
                    cases.append(case_type(e.name, "insert", actor.name, "org1", "rows", insert_sql(t, written),
                                           oracle.expect(actor, "insert", e.name, row, "org1"),
                                           attack=f"insert {e.name} with {column} = {value}",
                                           setup=clearing_sql(t, written, w),
                                           outsider=oracle.outsider_insert(actor, e.name, "org1")))
    return cases


def reattribution_attacks(bp: Blueprint, schema: Schema, w: World, enums, make: MakeValues, oracle,
                          attack) -> None:
    """Someone allowed to insert inserts a row naming another user as its author: always denied."""
    for e in bp.entities:
        if not e.owner_column or not command_grants(bp, e, "insert"):
            continue
        t = schema.table(e.name)
        for actor in w.actors.values():
            values = make(t, "org1", w, actor.name, 9700 + len(w.rows), enums, with_id=False)
            if oracle.expect(actor, "insert", e.name, Row(e.name, "org1", actor.name, {}, values=values), "org1") \
                    != "allowed":
                continue
            victim = next(a for a in w.actors.values() if a.user_id and a.name != actor.name)
            values[e.owner_column] = literal(victim.user_id)
            attack(f"insert a {e.name} row in {victim.name}'s name", e.name, actor.name, insert_sql(t, values))
            break

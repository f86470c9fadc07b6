"""SQL -> the physical schema model, accumulated across migration files in order.

The same `Schema` the generator builds, so every rule is written once. Each statement is cut out
by `split`, parsed with the PostgreSQL grammar (pgparse / libpg_query) and applied to the model by
a handler of `ddl`; a statement that does not parse becomes a `Problem` with its position and
the rest of the file is still read. Objects keep the file, line and column of their statement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pgparse

from ..model.schema import Extension, Function, Location, Problem, Schema, Table, View
from ..model.tenant_keys import assign_tenant_keys
from . import ddl_blocks, ddl_platform  # noqa: F401  (register their handlers)
from .ddl import apply
from .ddl_defaults import new_execute_roles, new_grants, supabase_defaults
from .events import EventTrigger
from .made import Maker
from .parser import Parses, parse
from .split import Lines, split
from .tree import forget_indexes
from .suppress import Suppression, suppressions

MAX_MESSAGE = 240
_table = Maker(Table)


EXPOSED_DEFAULT = ("public", "graphql_public")


class Stmt:
    """One statement being applied: its text, where it sits, byte <-> character offsets."""

    __slots__ = ("file", "text", "start", "lines", "_ascii", "_bytes", "_here")

    def __init__(self, file: str, text: str, start: int, lines: Lines) -> None:
        self.file, self.text, self.start, self.lines = file, text, start, lines
        self._ascii = text.isascii()
        self._bytes: bytes | None = None
        self._here: Location | None = None  # where the statement starts: most objects point there

    def char(self, byte_offset: int) -> int:
        """libpg_query reports byte offsets; the model wants characters."""
        if self._ascii:
            return byte_offset
        if self._bytes is None:
            self._bytes = self.text.encode("utf-8", "surrogatepass")
        return len(self._bytes[:byte_offset].decode("utf-8", "ignore"))

    def byte(self, char_offset: int) -> int:
        return char_offset if self._ascii else len(self.text[:char_offset].encode("utf-8", "surrogatepass"))

    def loc(self, byte_offset: int | None = 0) -> Location:
        """Where a byte offset of the statement sits; locations are never changed once made, so the
        statement's own start is made once and shared."""
        if not byte_offset or byte_offset < 0:
            if self._here is None:
                self._here = self._location(0)
            return self._here
        return self._location(byte_offset)

    def _location(self, byte_offset: int) -> Location:
        line, column = self.lines.at(self.start + (byte_offset if self._ascii else self.char(byte_offset)))
        return Location.at(self.file, line, column)

    def inner(self, text: str, at: int) -> Stmt:
        """A statement this one runs (one of a DO block's): written at character `at` of this statement's
        text, or, at -1 (an EXECUTE string with quotes doubled, a PERFORM), nowhere as written."""
        if at >= 0:
            return Stmt(self.file, text, self.start + at, self.lines)
        pinned = _Pinned(self.file, text, self.start, self.lines)
        pinned._here = self.loc()
        return pinned


class _Pinned(Stmt):
    """A statement whose text is not in the file as written: everything in it is where the statement that
    ran it starts (offsets into its text would point into someone else's)."""

    __slots__ = ()

    def loc(self, byte_offset: int | None = 0) -> Location:
        return self._here

    def inner(self, text: str, at: int) -> Stmt:
        return super().inner(text, -1)  # what it runs is not in the file either


@dataclass
class ParsedSql:
    schema: Schema
    suppressions: list[Suppression] = field(default_factory=list)


class Reader:
    """Applies statements to one Schema; `read` each migration in order, then `finish`."""

    def __init__(self, assume_platform: bool = False) -> None:
        self.assume_platform = assume_platform
        self.suppressions: list[Suppression] = []
        forget_indexes()
        # Every statement applied and not rolled back, and the open transaction's marks in it
        # (savepoint name, or None for BEGIN; how many statements preceded it).
        # (None in the log: a transaction ended there, and a SET LOCAL of it with it.)
        self._log: list[Stmt | None] = []
        self._marks: list[tuple[str | None, int]] = []
        # Policy clause text -> its rebased parse tree, shared by every policy with that clause (trees
        # are never changed once read); ("after table", text) -> the clauses of a policy statement whose
        # text after the table's name is that.
        self.clauses: dict[Any, Any] = {}
        self._reset()

    def _reset(self) -> None:
        self.schema = Schema(schemas=[], exposed_schemas=list(EXPOSED_DEFAULT))
        if self.assume_platform:
            # A Supabase project: pg_graphql is installed (in schema graphql) unless the SQL drops it.
            self.schema.extensions.append(Extension(name="pg_graphql", schema_name="graphql"))
        self.creation_schema = "public"  # first entry of search_path
        # The session's search_path schema while a SET LOCAL of the open transaction overrides it (evasion
        # round 17 e06: `set local search_path = internal` ends at COMMIT, so a later table lands in public).
        self.session_schema: str | None = None
        # The whole search_path, along which a call of a function named without a schema is resolved (evasion round
        # 18 e05), and the session's while a SET LOCAL overrides it.
        self.search_path: list[str] = ["public"]
        self.session_path: list[str] | None = None
        self.default_privileges = supabase_defaults()  # as ALTER DEFAULT PRIVILEGES leaves them
        # (schema, name) -> object: lookups stay constant-time on histories of 100,000 statements.
        self._tables: dict[tuple[str, str], Table] = {}
        self._views: dict[tuple[str, str], View] = {}
        self._functions: dict[tuple[str, str], list[Function]] = {}
        self.event_triggers: dict[str, EventTrigger] = {}  # by name: those that may turn RLS on (events.py)
        self.replica = False  # session_replication_role = replica: ORIGIN event triggers do not fire
        self.session_replica: bool | None = None  # the session's, while a SET LOCAL of the transaction overrides it
        self.relations: set[tuple[str, str]] = set()  # sequences and composite types made (ddl_blocks._exists)
        self.replaying: set[str] = set()  # functions whose bodies a call is replaying (ddl_blocks.replay)
        self.unsure = 0  # > 0 while applying a DO block's statement that may not have run

    # --- lookups used by the handlers ---------------------------------------------------------

    def name(self, rv: dict | None) -> tuple[str, str]:
        rv = rv or {}
        return rv.get("schemaname") or self.creation_schema, rv.get("relname", "")

    def table(self, schema: str, name: str) -> Table | None:
        return self._tables.get((schema, name))

    def table_or_external(self, schema: str, name: str, st: Stmt) -> Table:
        """The table, or a stand-in for one the audited SQL never created (e.g. storage.objects)."""
        t = self.table(schema, name)
        if t is None:
            t = _table(schema_name=schema, name=name, external=True, location=st.loc())
            self.add_table(t)
        return t

    def view(self, schema: str, name: str) -> View | None:
        return self._views.get((schema, name))

    def functions(self, schema: str, name: str, arg_types: str | None) -> list[Function]:
        """Functions by name; with `arg_types`, the overload with those types (or the only one)."""
        same = list(self._functions.get((schema, name), []))
        if arg_types is None:
            return same
        exact = [f for f in same if f.arg_types == arg_types]
        return exact or (same if len(same) == 1 else [])

    # --- changes the handlers make through the indexes -----------------------------------------

    def execute_roles(self, schema: str) -> list[str]:
        """Who may execute a function created now in `schema` (default privileges)."""
        return new_execute_roles(self, schema)

    def add_table(self, t: Table) -> None:
        if not t.external and not t.grants:
            t.grants = new_grants(self, t.schema_name)
        self.schema.tables.append(t)
        self._tables[(t.schema_name, t.name)] = t

    def drop_table(self, schema: str, name: str) -> None:
        t = self._tables.pop((schema, name), None)
        if t is not None:
            self.schema.tables.remove(t)

    def add_view(self, v: View) -> None:
        old = self.view(v.schema_name, v.name)
        # CREATE OR REPLACE keeps the view's privileges; a new one gets the default privileges.
        v.grants = old.grants if old is not None else (v.grants or new_grants(self, v.schema_name))
        if old is not None:  # a replaced view keeps its triggers and rules too
            v.triggers, v.rewrite_rules = old.triggers, old.rewrite_rules
        self.drop_view(v.schema_name, v.name)
        self.schema.views.append(v)
        self._views[(v.schema_name, v.name)] = v

    def drop_view(self, schema: str, name: str) -> None:
        v = self._views.pop((schema, name), None)
        if v is not None:
            self.schema.views.remove(v)

    def add_function(self, f: Function) -> None:
        self.schema.functions.append(f)
        self._functions.setdefault((f.schema_name, f.name), []).append(f)

    def drop_functions(self, gone: list[Function]) -> None:
        ids = {id(f) for f in gone}
        if ids:
            self.schema.functions = [f for f in self.schema.functions if id(f) not in ids]
            for f in gone:
                same = self._functions.get((f.schema_name, f.name), [])
                same[:] = [x for x in same if id(x) not in ids]

    def reindex(self) -> None:
        """After a rename or a move to another schema: rebuild every index (rare, linear)."""
        self._tables = {(t.schema_name, t.name): t for t in self.schema.tables}
        self._views = {(v.schema_name, v.name): v for v in self.schema.views}
        self._functions = {}
        for f in self.schema.functions:
            self._functions.setdefault((f.schema_name, f.name), []).append(f)

    # --- transactions: a rolled-back change does not count ---------------------------------------
    # Nothing is copied at BEGIN (migrations nearly always commit): a rollback rebuilds the schema by
    # replaying the statements that still count, which costs one re-read and only when it happens.

    def begin(self) -> None:
        if not self._marks:
            self._marks.append((None, len(self._log)))

    def commit(self) -> None:
        self._marks.clear()
        self.end_transaction()

    def rollback(self) -> None:
        if self._marks:
            cut = self._marks[0][1]
            self._marks.clear()
            self._rewind(cut)
        self.end_transaction()

    def end_transaction(self, logged: bool = True) -> None:
        """A transaction ends (COMMIT, ROLLBACK, the end of a migration file, which the Supabase CLI runs as one
        batch, one implicit transaction, BEGIN written or not): its SET LOCAL search_path and
        session_replication_role end with it."""
        ended = self.session_schema is not None or self.session_replica is not None
        if self.session_path is not None:
            self.search_path, self.session_path = self.session_path, None
        if self.session_schema is not None:
            self.creation_schema, self.session_schema = self.session_schema, None
        if self.session_replica is not None:
            self.replica, self.session_replica = self.session_replica, None
        if ended and logged:
            self._log.append(None)  # (a rollback that replays the log ends it there again)

    def savepoint(self, name: str) -> None:
        if self._marks:
            self._marks.append((name, len(self._log)))

    def release(self, name: str) -> None:
        at = self._savepoint(name)
        if at is not None:
            del self._marks[at:]

    def rollback_to(self, name: str) -> None:
        at = self._savepoint(name)
        if at is not None:
            del self._marks[at + 1:]  # the savepoint itself stays
            self._rewind(self._marks[at][1])

    def _savepoint(self, name: str) -> int | None:
        return next((i for i in range(len(self._marks) - 1, 0, -1) if self._marks[i][0] == name), None)

    def _rewind(self, cut: int) -> None:
        if cut >= len(self._log):
            return
        problems = self.schema.problems  # a statement that does not parse is reported all the same
        del self._log[cut:]
        self._reset()
        for st in self._log:
            if st is None:
                self.end_transaction(logged=False)
                continue
            for raw in parse(st.text):
                apply(self, raw.get("stmt") or {}, st)
        self.schema.problems = problems

    def problem(self, message: str, location: Location) -> None:
        text = message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + "..."
        self.schema.problems.append(Problem(message=text, location=location))

    # --- reading --------------------------------------------------------------------------------

    def read(self, source: Split, file: str, take: Callable[[str], list[dict]] = parse) -> None:
        """Apply every statement of one file; never raises on bad SQL. `take` parses each of the file's
        `texts`, in order."""
        statements, comments, lines = source.statements, source.comments, source.lines
        self.suppressions += suppressions(comments, statements, lines, file)
        for s in statements:
            if s.meta:
                continue
            st = Stmt(file, s.text, s.start, lines)
            try:
                parsed = take(s.text)
            except pgparse.PGQueryError as exc:
                position = max(getattr(exc, "position", 0) or 1, 1) - 1  # 1-based characters
                line, column = lines.at(s.start + min(position, len(s.text)))
                self.problem(f"syntax error: {exc.args[0] if exc.args else exc}",
                             Location(file=file, line=line, column=column))
                continue
            except (RecursionError, ValueError, UnicodeError) as exc:
                self.problem(f"statement cannot be parsed ({type(exc).__name__}: nested too deeply or "
                             "not valid text)", st.loc())
                continue
            for raw in parsed:
                node, part = raw.get("stmt") or {}, st if len(parsed) == 1 else self._part(st, raw)
                if "TransactionStmt" not in node:
                    self._log.append(part)
                apply(self, node, part)
        # Each migration runs in a session of its own: a transaction it leaves open ends with it. Its
        # changes are kept (the audit reads what the file wrote, rather than guess how it was run).
        self._marks.clear()
        self.end_transaction()

    @staticmethod
    def _part(st: Stmt, raw: dict) -> Stmt:
        """One of several statements libpg_query found in a chunk the splitter left whole."""
        at = raw.get("stmt_location", 0)
        start = st.char(at)
        end = st.char(at + raw["stmt_len"]) if raw.get("stmt_len") else len(st.text)
        return Stmt(st.file, st.text[start:end], st.start + start, st.lines)

    def finish(self) -> ParsedSql:
        """Facts that need the whole history: the tenant key of every table that has one."""
        assign_tenant_keys(self.schema.tables)
        return ParsedSql(schema=self.schema, suppressions=self.suppressions)


class Split:
    """One file cut into statements (what the parser is sent: `texts`) and comments."""

    __slots__ = ("statements", "comments", "lines", "texts")

    def __init__(self, source: str) -> None:
        source = source.replace("\x00", " ")  # libpg_query reads C strings: a NUL would end the text
        self.statements, self.comments = split(source)
        self.lines = Lines(source)
        self.texts = [s.text for s in self.statements if not s.meta]


def read_sql(sources: list[tuple[str, str]], assume_platform: bool = False, worker: bool | None = None,
             exposed: list[str] | None = None, skipped: list[str] | None = None) -> ParsedSql:
    """(file name, SQL text) pairs, applied in the given order, as one schema; `assume_platform`: the
    SQL runs on a Supabase project, where pg_graphql is installed. `worker`: parse in a second process
    ahead of the reading (None: when the history is long enough to pay for it, see `parser`). `exposed`:
    the schemas the API serves before the SQL says otherwise (the project's config.toml). `skipped`: files of a
    Supabase migrations folder the CLI does not apply, each reported as not read (evasion round 16 e03)."""
    reader = Reader(assume_platform)
    for name in skipped or []:
        reader.problem("migration file not applied: the Supabase CLI skips a file not named <timestamp>_name.sql "
                       "(or an old first <timestamp>_init.sql); its statements never run and were not audited. "
                       "Rename it", Location(file=name, line=1, column=1))
    if exposed is not None:
        reader.schema.exposed_schemas = list(exposed)
    with Parses(Parses.wanted(sources) if worker is None else worker) as parses:
        files = []
        for name, text in sources:
            files.append((Split(text), name))
            parses.add(files[-1][0].texts)
        parses.added_all()
        for source, name in files:
            reader.read(source, name, parses.take)
    return reader.finish()

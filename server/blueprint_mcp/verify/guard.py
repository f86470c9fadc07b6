"""What verify refuses to run: SQL that could end its transaction or act beyond the database.

verify applies migrations inside one transaction and rolls it back. That promise only holds if
nothing in the SQL ends or escapes the transaction, or does something a rollback cannot undo
(files, programs, other databases, other sessions, cluster-wide settings). Every script is
parsed with PostgreSQL's own grammar before anything runs; DO blocks and function bodies are
parsed too (PL/pgSQL through libpg_query's PL/pgSQL parser), and dynamic SQL is checked when
its text can be read from the source and refused when it cannot. The forced rollback and the
statement timeout stay behind this as a second wall.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import pgparse

from ..audit.body import embedded_sql
from ..audit.tree import dotted, function_name, nodes, nodes_in, strings
from ..model.errors import BlueprintError

MAX_LISTED = 10

# Statement kinds refused wherever they appear, with the reason shown to the user.
_REFUSED_STATEMENTS = {
    "TransactionStmt": "transaction control ends or escapes verify's transaction",
    "CreatedbStmt": "acts on another database",
    "DropdbStmt": "acts on another database",
    "AlterDatabaseStmt": "changes a database's settings",
    "AlterDatabaseSetStmt": "changes a database's settings",
    "AlterDatabaseRefreshCollStmt": "changes a database's settings",
    "CreateRoleStmt": "creates a cluster-wide role",
    "AlterRoleStmt": "changes a cluster-wide role",
    "AlterRoleSetStmt": "changes a cluster-wide role's settings",
    "DropRoleStmt": "drops a cluster-wide role",
    "GrantRoleStmt": "changes cluster-wide role membership",
    "DropOwnedStmt": "acts on everything a role owns",
    "ReassignOwnedStmt": "acts on everything a role owns",
    "AlterSystemStmt": "writes the server's configuration file",
    "CreateTableSpaceStmt": "creates a directory on the server",
    "DropTableSpaceStmt": "removes a tablespace",
    "AlterTableSpaceOptionsStmt": "changes a tablespace",
    "AlterTableMoveAllStmt": "moves objects between tablespaces",
    "LoadStmt": "loads a shared library into the server",
    "CheckPointStmt": "forces a server checkpoint",
    "DiscardStmt": "discards session state verify relies on",
    "CreatePLangStmt": "installs a procedural language",
    "CreateSubscriptionStmt": "connects to another server",
    "AlterSubscriptionStmt": "connects to another server",
    "DropSubscriptionStmt": "connects to another server",
    "CreateFdwStmt": "installs a foreign-data wrapper (access beyond the database)",
    "AlterFdwStmt": "changes a foreign-data wrapper",
    "CreateForeignServerStmt": "declares a foreign server (access beyond the database)",
    "AlterForeignServerStmt": "changes a foreign server",
    "CreateUserMappingStmt": "stores credentials for a foreign server",
    "AlterUserMappingStmt": "changes credentials for a foreign server",
    "ImportForeignSchemaStmt": "reads another server's schema",
    "CreateForeignTableStmt": "reads or writes through another server",
}

# Extensions whose only purpose is to reach beyond the database (other servers, files, HTTP,
# background workers that outlive the transaction, untrusted languages).
_REFUSED_EXTENSIONS = frozenset({
    "adminpack", "dblink", "file_fdw", "http", "pg_background", "pg_net", "pgsql_http", "plperlu",
    "plpython3u", "plpythonu", "plsh", "pltclu", "postgres_fdw", "mysql_fdw", "oracle_fdw", "multicorn",
    # writes heap pages directly (heap_force_kill, heap_force_freeze): no rollback brings the rows back
    "pg_surgery",
})

# Functions that act outside the transaction: files, other sessions, the server process,
# replication, session-level locks, non-transactional sequence changes.
_REFUSED_FUNCTIONS = frozenset({
    "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_promote",
    "pg_switch_wal", "pg_create_restore_point", "pg_logical_emit_message", "pg_log_backend_memory_contexts",
    "pg_stat_file", "lo_import", "lo_export", "pg_import_system_collations", "setval",
    "pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared",
    "pg_advisory_unlock", "pg_advisory_unlock_shared", "pg_advisory_unlock_all",
    "pg_wal_replay_pause", "pg_wal_replay_resume", "pg_stat_statements_reset",
    "http",  # pgsql-http's own request function (its verbs are http_get, http_post...)
})
_REFUSED_FUNCTION_PREFIXES = ("pg_read_", "pg_ls_", "pg_file_", "dblink", "pg_backup_", "pg_stat_reset",
                              "pg_replication_origin_", "pg_create_logical_replication_slot",
                              "pg_create_physical_replication_slot", "pg_drop_replication_slot",
                              "pg_copy_logical_replication_slot", "pg_copy_physical_replication_slot",
                              "pg_logdir_ls", "http_", "net.",
                              # a replication slot moved or consumed stays so (a Realtime or CDC consumer
                              # loses those changes); pg_surgery's page writes and pg_background's own
                              # transactions are not undone by verify's rollback either
                              "pg_replication_slot_advance", "pg_logical_slot_get_", "heap_force_",
                              "pg_truncate_visibility_map", "pg_background_")

# Functions that run SQL handed to them as text, and which argument holds it: the text is checked like a
# statement when the source spells it out, and refused when it is computed.
_SQL_TEXT_ARGUMENTS = {
    "query_to_xml": 0, "query_to_xmlschema": 0, "query_to_xml_and_xmlschema": 0, "ts_stat": 0, "ts_rewrite": 1,
    # pgTAP's runners, for a database that has it
    "lives_ok": 0, "throws_ok": 0, "throws_like": 0, "throws_ilike": 0, "throws_matching": 0,
    "throws_imatching": 0, "performs_ok": 0, "performs_within": 0, "results_eq": 0, "results_ne": 0,
    "set_eq": 0, "set_ne": 0, "set_has": 0, "set_hasnt": 0, "bag_eq": 0, "bag_ne": 0, "bag_has": 0,
    "bag_hasnt": 0, "is_empty": 0, "isnt_empty": 0, "row_eq": 0,
}
# A string that starts like a statement is read as one wherever it is passed (another function may run it).
_LOOKS_LIKE_SQL = re.compile(r"^\s*(?:select|insert|update|delete|with|values|table|call|do|create|alter|drop|copy|"
                             r"set|reset|lock|grant|revoke|truncate|explain|prepare|execute|comment|notify|listen)\b",
                             re.IGNORECASE)
# DDL that names a function it will call later (operators, aggregates, casts, types, triggers, conversions).
_FUNCTION_OPTIONS = frozenset({
    "function", "procedure", "sfunc", "finalfunc", "combinefunc", "serialfunc", "deserialfunc", "msfunc",
    "minvfunc", "mfinalfunc", "restrict", "join", "input", "output", "receive", "send", "typmod_in",
    "typmod_out", "analyze", "subscript", "canonical", "subtype_diff", "handler", "validator", "inline",
})

# Settings verify relies on: its statement timeout, who it is, how its transaction behaves.
_PROTECTED_SETTINGS = frozenset({
    "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "session_authorization",
    "transaction_isolation", "transaction_read_only", "default_transaction_read_only", "transaction",
    "session characteristics", "session_replication_role",
    # off, a query RLS would filter fails with 42501 instead, which verify counts as denied: every leak would pass
    "row_security",
})
# The per-claim settings auth.uid(), auth.role(), auth.email() and auth.jwt() read before request.jwt.claims: one
# pinned by a migration makes every actor the same user (an outsider's join by insert then passed).
_PROTECTED_CLAIMS = "request.jwt.claim"


def _protected(name: str) -> bool:
    return name in _PROTECTED_SETTINGS or name == _PROTECTED_CLAIMS or name.startswith(_PROTECTED_CLAIMS + ".")
_TRUSTED_LANGUAGES = frozenset({"sql", "plpgsql", "plv8", "pllua", "plperl", "pltcl", "plrust"})

_FIX = ("verify applies every migration inside one transaction and rolls it back; remove these statements "
        "(BEGIN/COMMIT wrappers are not needed: the Supabase CLI also runs each migration in a transaction)")


class UnsafeSql(BlueprintError):
    """verify will not run this SQL; the message lists every refused statement with its position."""


class SqlSyntaxError(BlueprintError):
    """The SQL does not parse with PostgreSQL's grammar; the message has the line and column."""


@dataclass(frozen=True, slots=True)
class Refusal:
    migration: int  # 1-based, in the order given
    line: int
    column: int
    statement: str  # the statement's first line, shortened
    reason: str

    def __str__(self) -> str:
        return f"migration {self.migration}, line {self.line}, column {self.column}: `{self.statement}`: {self.reason}"


@dataclass(frozen=True, slots=True)
class Statement:
    text: str  # from its first significant character, without the terminating ';'
    line: int
    column: int


def check_migrations(migrations: list[str]) -> list[list[Statement]]:
    """Each migration cut into statements; UnsafeSql naming every refused statement instead."""
    found: list[Refusal] = []
    out: list[list[Statement]] = []
    for i, sql in enumerate(migrations, 1):
        try:
            statements, refused = _examined(sql, i) if len(sql) <= CACHED_CHARS else examine(sql, migration=i)
        except SqlSyntaxError as exc:
            raise SqlSyntaxError(f"migration {i} of {len(migrations)} {exc.message}", field="migrations",
                                 fix=exc.fix) from None
        out.append(list(statements))
        found += refused
    if not found:
        return out
    listed = "; ".join(str(r) for r in found[:MAX_LISTED])
    more = f"; and {len(found) - MAX_LISTED:,} more" if len(found) > MAX_LISTED else ""
    raise UnsafeSql(f"verify refused to run {len(found)} statement{'s' * (len(found) != 1)}: {listed}{more}",
                    field="migrations", fix=_FIX)


# A migration's statements and refusals are a function of its text: verify run again on the same migrations (a
# loop fixing one file while the others stay as they were) reads the unchanged ones once. Up to 1 MB each, 8 kept.
CACHED_CHARS = 1_000_000


@functools.lru_cache(maxsize=8)
def _examined(sql: str, migration: int) -> tuple[tuple[Statement, ...], tuple[Refusal, ...]]:
    statements, refused = examine(sql, migration=migration)
    return tuple(statements), tuple(refused)


def refusals(sql: str, *, migration: int = 1) -> list[Refusal]:
    """Every statement of `sql` verify must not run, in source order."""
    return examine(sql, migration=migration)[1]


def examine(sql: str, *, migration: int = 1) -> tuple[list[Statement], list[Refusal]]:
    """`sql` cut into statements, and the ones verify must not run."""
    encoded = sql.encode("utf-8")
    try:
        parsed = pgparse.parse(sql)
    except pgparse.PGQueryError as exc:
        offset = _char_offset(encoded, max(int(getattr(exc, "position", 0) or 0) - 1, 0))
        line, column = _line_col(sql, offset)
        source = sql.splitlines()[line - 1].strip() if sql.strip() else ""
        raise SqlSyntaxError(f"does not parse: line {line}, column {column}: {exc.message} in `{_first_line(source)}`",
                             fix="fix the SQL") from None
    except (RecursionError, ValueError) as exc:
        raise SqlSyntaxError(f"cannot be parsed ({exc})", fix="split it into smaller statements") from None
    statements: list[Statement] = []
    refused: list[Refusal] = []
    for tree, text, start in _statements(sql, encoded, parsed):
        line, column = _line_col(sql, start)
        statements.append(Statement(text, line, column))
        reasons = list(dict.fromkeys(_statement_reasons(tree, text)))
        if reasons:
            refused.append(Refusal(migration, line, column, _first_line(text), "; ".join(reasons)))
    return statements, refused


def _statements(sql: str, encoded: bytes, parsed: list[dict]) -> list[tuple[Any, str, int]]:
    """(parse tree, source text, character offset of its first significant character) per statement."""
    out = []
    for raw in parsed:
        loc = raw.get("stmt_location", 0)
        start = _char_offset(encoded, loc)
        end = _char_offset(encoded, loc + raw["stmt_len"]) if raw.get("stmt_len") else len(sql)
        body = sql[start:end]
        lead = len(body) - len(_strip_leading(body))
        out.append((raw["stmt"], body[lead:].rstrip().rstrip(";").rstrip(), start + lead))
    return out


# --- the checks ------------------------------------------------------------------------------------


def _default_mark(kind: str, body: dict) -> str | None:
    """Marks column defaults, where nextval() belongs (it runs when a row is inserted, not when declared).
    A column's other constraints are not defaults: nextval() in its CHECK runs on every insert too."""
    if (kind == "Constraint" and body.get("contype") == "CONSTR_DEFAULT") or (
            kind == "AlterTableCmd" and body.get("subtype") == "AT_ColumnDefault"):
        return "default"
    return None


def _statement_reasons(tree: Any, text: str, depth: int = 0) -> list[str]:
    """Reasons to refuse one parsed statement (its source `text` is needed for PL/pgSQL bodies)."""
    out: list[str] = []
    for kind, body, ctx in nodes_in(tree, _default_mark):
        if kind == "A_Const" and depth < 3:
            value = _constant({"A_Const": body})
            if value and _LOOKS_LIKE_SQL.match(value):
                out += [f"SQL in a string: {r}" for r in _sql_reasons(value, depth + 1, quiet=True)]
        elif kind == "DefElem" and str(body.get("defname", "")).lower() in _FUNCTION_OPTIONS:
            out += _named_function_reasons(_option_function(body.get("arg")))
        elif kind == "ObjectWithArgs":
            out += _named_function_reasons(dotted(body.get("objname")))
        elif kind in ("CreateTrigStmt", "CreateEventTrigStmt", "CreateConversionStmt"):
            out += _named_function_reasons(dotted(body.get("funcname") or body.get("func_name")))
        elif kind in ("CreateCastStmt", "CreateTransformStmt"):
            for key in ("func", "fromsql", "tosql"):
                if isinstance(body.get(key), dict):
                    out += _named_function_reasons(dotted(body[key].get("objname")))
        if kind in _IDENTITY_DDL:
            out += _identity_reasons(kind, body)
        if kind in _REFUSED_STATEMENTS:
            out.append(_REFUSED_STATEMENTS[kind])
        elif kind == "VacuumStmt" and body.get("is_vacuumcmd"):
            out.append("VACUUM cannot run inside a transaction")
        elif kind == "ReindexStmt" and body.get("kind") in ("REINDEX_OBJECT_DATABASE", "REINDEX_OBJECT_SYSTEM"):
            out.append("reindexes a whole database")
        elif kind == "CopyStmt":
            out.append(_copy_reason(body))
        elif kind == "CreateExtensionStmt" and body.get("extname", "").lower() in _REFUSED_EXTENSIONS:
            out.append(f"extension {body['extname']} reaches beyond the database")
        elif kind == "VariableSetStmt":
            out += _setting_reasons(body)
        elif kind in ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"):
            out += _catalog_write_reasons(body.get("relation"))
        elif kind == "FuncCall":
            out += _call_reasons(body, depth, in_default="default" in ctx)
        elif kind == "DoStmt":
            out += _do_reasons(body)
        elif kind == "CreateFunctionStmt":
            out += _function_reasons(body, text)
    return out


# The functions policies ask who is calling, and the schema holding them: the platform's, never a migration's (on
# Supabase postgres cannot change them). Redefined in verify's shim, auth.uid() could name one user for every actor.
_AUTH_IDENTITY = frozenset({"auth.uid", "auth.role", "auth.email", "auth.jwt"})
_IDENTITY_DDL = frozenset({"CreateFunctionStmt", "AlterFunctionStmt", "RenameStmt", "DropStmt", "AlterOwnerStmt",
                           "AlterObjectSchemaStmt", "AlterObjectDependsStmt"})


def _identity_reasons(kind: str, body: dict) -> list[str]:
    if kind in ("DropStmt", "RenameStmt") and "OBJECT_SCHEMA" in (body.get("removeType"), body.get("renameType")):
        schemas = strings(body.get("objects")) if kind == "DropStmt" else [str(body.get("subname", ""))]
        return ["drops or renames the auth schema, which the platform owns"] if "auth" in schemas else []
    if kind == "CreateFunctionStmt":
        names = [dotted(body.get("funcname"))]
    else:
        names = [dotted(o.get("objname")) for k, o, _ in nodes_in(body, lambda *_: None) if k == "ObjectWithArgs"]
    return [f"changes {name}(), which the platform owns and every verdict relies on (who is calling)"
            for name in names if name.lower() in _AUTH_IDENTITY]


def _copy_reason(body: dict) -> str:
    if body.get("is_program"):
        return "COPY ... PROGRAM runs a shell command on the server"
    if body.get("filename"):
        return "COPY reads or writes a file on the server"
    return "COPY with STDIN/STDOUT needs a client data stream a migration cannot supply"


def _setting_reasons(body: dict) -> list[str]:
    if body.get("kind") == "VAR_RESET_ALL":
        return ["RESET ALL would clear verify's statement timeout"]
    name = str(body.get("name", "")).lower()
    if _protected(name):
        return [f"changes {name}, which verify relies on"]
    return []


def _catalog_write_reasons(relation: Any) -> list[str]:
    """A write into the system catalogs: `update pg_settings` is a SET in disguise (it would lift verify's
    statement timeout), and rows of pg_authid, pg_class... change what verify itself relies on."""
    rel = relation.get("RangeVar") if isinstance(relation, dict) and "RangeVar" in relation else relation
    if not isinstance(rel, dict):
        return []
    schema, name = str(rel.get("schemaname") or "").lower(), str(rel.get("relname") or "").lower()
    # Unqualified, a pg_ name finds the catalog first: pg_catalog leads every search path.
    if schema in ("pg_catalog", "information_schema") or (not schema and name.startswith("pg_")):
        return [f"writes the system catalog {name}, which verify relies on"]
    return []


def _named_function_reasons(name: str) -> list[str]:
    name = name.lower()
    bare = name.rsplit(".", 1)[-1]
    if name and (bare in _REFUSED_FUNCTIONS or name.startswith(_REFUSED_FUNCTION_PREFIXES) or bare.startswith(
            _REFUSED_FUNCTION_PREFIXES)):
        return [f"{name}() acts outside the transaction (files, other sessions, the server or a sequence)"]
    return []


def _option_function(arg: Any) -> str:
    """The function an option such as `function = setval` names (a type name, a name list or a string)."""
    if not isinstance(arg, dict):
        return ""
    if "TypeName" in arg:
        return dotted(arg["TypeName"].get("names"))
    if "List" in arg:
        return ".".join(strings(arg["List"].get("items")))
    return _sval(arg) or ""


def _sql_text_reasons(call: dict, depth: int) -> list[str]:
    bare = function_name(call).lower().rsplit(".", 1)[-1]
    position = _SQL_TEXT_ARGUMENTS[bare]
    args = call.get("args") or []
    if len(args) <= position:
        return []
    text = _constant(args[position])
    if text is None:
        return [f"{bare}() runs SQL built at run time, which verify cannot check (spell the query out)"]
    if _LOOKS_LIKE_SQL.match(text):
        return []  # read as a string constant, below
    return [f"{bare}(): " + r for r in _sql_reasons(text, depth + 1)]


def _call_reasons(call: dict, depth: int = 0, in_default: bool = False) -> list[str]:
    name = function_name(call).lower()
    bare = name.rsplit(".", 1)[-1]
    named = _named_function_reasons(name)
    if named:
        return named
    if bare == "nextval" and not in_default:
        return ["nextval() advances a sequence, which no rollback undoes"]
    if bare in _SQL_TEXT_ARGUMENTS:
        return _sql_text_reasons(call, depth)
    if bare == "set_config":
        first = (call.get("args") or [None])[0]
        setting = _constant(first)
        if setting is None:
            return ["set_config() with a computed setting name cannot be checked"]
        if _protected(setting.lower()):
            return [f"changes {setting.lower()}, which verify relies on"]
    return []


def _options(body: dict, key: str = "options") -> dict[str, Any]:
    return {d["DefElem"]["defname"]: d["DefElem"].get("arg") for d in body.get(key) or [] if "DefElem" in d}


def _do_reasons(body: dict) -> list[str]:
    opts = _options(body, "args")
    language = _sval(opts.get("language")) or "plpgsql"
    code = _sval(opts.get("as")) or ""
    if language.lower() != "plpgsql":
        return _language_reasons(language) or [f"DO blocks in {language} cannot be checked"]
    return _plpgsql_reasons(code, "DO block", wrap=True)


def _function_reasons(body: dict, text: str) -> list[str]:
    opts = _options(body)
    language = (_sval(opts.get("language")) or "sql").lower()
    what = "procedure" if body.get("is_procedure") else "function"
    reasons = _language_reasons(language)
    if reasons:
        return reasons
    code = opts.get("as")
    items = strings(code.get("List", {}).get("items")) if isinstance(code, dict) and "List" in code else []
    source = items[0] if items else ""
    if language == "plpgsql" and source:
        return _plpgsql_reasons(text, f"{what} body", wrap=False)
    if language == "sql" and source:
        return [f"{what} body: {r}" for r in _sql_reasons(source)]
    if language not in ("sql", "plpgsql"):
        # plv8.execute(), spi_exec_query()...: SQL built at run time in a body verify cannot read, as DO blocks
        return [f"a {language} {what} body cannot be checked (it may run SQL built at run time)"]
    return []  # BEGIN ATOMIC bodies are part of the parse tree and were walked already


def _language_reasons(language: str) -> list[str]:
    lang = language.lower()
    if lang in ("c", "internal"):
        return [f"a {lang}-language function runs native code in the server"]
    if lang not in _TRUSTED_LANGUAGES and lang.endswith("u"):
        return [f"{lang} is an untrusted language (it can reach the server's files and network)"]
    return []


def _sql_reasons(source: str, depth: int = 0, quiet: bool = False) -> list[str]:
    """Reasons to refuse SQL text; `quiet`: text that only looked like SQL and does not parse is just a string."""
    try:
        parsed = pgparse.parse(source)
    except (pgparse.PGQueryError, RecursionError, ValueError):
        return [] if quiet else ["does not parse, so verify cannot prove it safe"]
    return [r for tree, text, _ in _statements(source, source.encode("utf-8"), parsed)
            for r in _statement_reasons(tree, text, depth)]


# PL/pgSQL statements that run SQL text computed at run time, and the field holding that text.
_DYNAMIC = {"PLpgSQL_stmt_dynexecute": "query", "PLpgSQL_stmt_dynfors": "query",
            "PLpgSQL_stmt_open": "dynquery", "PLpgSQL_stmt_return_query": "dynquery"}


def _plpgsql_reasons(code: str, where: str, *, wrap: bool) -> list[str]:
    """`code` is a whole CREATE FUNCTION statement, or (wrap) a DO block's body."""
    if wrap:
        code = "create function pg_temp.blueprint_guard() returns void language plpgsql as " + _quote(code)
    try:
        tree = pgparse.parse_pgsql(code)
    except (pgparse.PGQueryError, RecursionError, ValueError) as exc:
        return [f"{where} does not parse ({exc}), so verify cannot prove it safe"]
    out: list[str] = []
    for kind, body in nodes(tree):
        if kind in ("PLpgSQL_stmt_commit", "PLpgSQL_stmt_rollback"):
            out.append(f"{where}: transaction control ends or escapes verify's transaction")
        elif kind in _DYNAMIC and isinstance(body.get(_DYNAMIC[kind]), dict):
            expr = body[_DYNAMIC[kind]].get("PLpgSQL_expr", {})
            out += [f"{where}: {r}" for r in _dynamic_reasons(expr)]
        elif kind == "PLpgSQL_expr":
            out += [f"{where}: {r}" for r in _sql_reasons_of_expr(body.get("query", ""), body.get("parseMode", 0))]
    return out


def _sql_reasons_of_expr(query: str, mode: int) -> list[str]:
    text = embedded_sql(query, mode)
    if not text:
        return []
    try:
        parsed = pgparse.parse(text)
    except (pgparse.PGQueryError, RecursionError, ValueError):
        return []  # PL/pgSQL-only syntax (e.g. a bare variable list): it holds no statement to run
    return [r for tree, stmt, _ in _statements(text, text.encode("utf-8"), parsed)
            for r in _statement_reasons(tree, stmt)]


# format() placeholders, replaced by something of the same syntactic kind so the text parses.
_FORMAT = re.compile(r"%(?:\d+\$)?-?\d*([sIL%])")


def _dynamic_reasons(expr: dict) -> list[str]:
    """EXECUTE: check the text when the source holds it (a constant, or format() of a constant whose %s
    arguments are constants too). EXECUTE runs SQL, not PL/pgSQL: text that does not parse is refused, since
    what it would run cannot be read."""
    text = _dynamic_text(expr.get("query", ""))
    if text is None:
        return ["EXECUTE of SQL built at run time cannot be checked (write the statement out, or use "
                "format() with a constant format string, %I and %L for run-time values)"]
    try:
        pgparse.parse(text)
    except (pgparse.PGQueryError, RecursionError, ValueError):
        return ["EXECUTE of text that does not parse as SQL cannot be checked"]
    return ["EXECUTE: " + r for r in _sql_reasons(text)]


def _dynamic_text(expression: str) -> str | None:
    try:
        parsed = pgparse.parse(f"select {expression}")
    except (pgparse.PGQueryError, RecursionError, ValueError):
        return None
    target = parsed[0]["stmt"].get("SelectStmt", {}).get("targetList") or []
    if len(parsed) != 1 or len(target) != 1:
        return None
    value = target[0].get("ResTarget", {}).get("val")
    constant = _constant(value)
    if constant is not None:
        return constant
    call = value.get("FuncCall") if isinstance(value, dict) else None
    if call and function_name(call).lower() in ("format", "pg_catalog.format"):
        args = call.get("args") or [None]
        fmt = _constant(args[0])
        if fmt is not None:
            return _formatted(fmt, args[1:])
    return None


def _formatted(fmt: str, args: list) -> str | None:
    """format()'s text with %I and %L as a quoted identifier and literal (their values cannot change the
    statement's shape) and %s as its argument, which must then be a constant: raw text pasted in at run time
    could be any SQL. None when it is not."""
    out, at, following = [], 0, 0
    for m in _FORMAT.finditer(fmt):
        out.append(fmt[at:m.start()])
        at = m.end()
        kind = m.group(1)
        if kind == "%":
            out.append("%")
            continue
        position = re.match(r"%(\d+)\$", m.group(0))
        index = int(position.group(1)) - 1 if position else following
        following = index + 1
        if kind == "I":
            out.append("x")
        elif kind == "L":
            out.append("'x'")
        else:
            text = _constant(args[index]) if 0 <= index < len(args) else None
            if text is None:
                return None
            out.append(text)
    return "".join(out) + fmt[at:]


# --- small helpers ---------------------------------------------------------------------------------


def _constant(node: Any) -> str | None:
    """The text of a string constant node (possibly cast), else None."""
    if not isinstance(node, dict):
        return None
    if "TypeCast" in node:
        return _constant(node["TypeCast"].get("arg"))
    const = node.get("A_Const")
    if isinstance(const, dict) and isinstance(const.get("sval"), dict):
        return const["sval"].get("sval", "")
    return None


def _sval(node: Any) -> str | None:
    if isinstance(node, dict) and isinstance(node.get("String"), dict):
        return node["String"].get("sval", "")
    return None


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _char_offset(encoded: bytes, byte_offset: int) -> int:
    """libpg_query reports byte offsets; Python strings index characters."""
    return len(encoded[:byte_offset].decode("utf-8", errors="ignore"))


def _line_col(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)


def _strip_leading(text: str) -> str:
    return text[_LEADING.match(text).end():]


def _first_line(text: str, width: int = 80) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 3] + "..."


# --- the second wall -------------------------------------------------------------------------------


BATCH_STATEMENTS, BATCH_CHARS = 64, 256_000  # statements sent to the server in one round trip


def run_contained(conn: Any, statements: list[Statement], migration: int, of: int,
                  check: Any = None) -> None:
    """Run each statement through PL/pgSQL's EXECUTE, where PostgreSQL itself forbids ending the
    transaction (COMMIT, ROLLBACK, PREPARE TRANSACTION) and every command that cannot run inside
    one (CREATE DATABASE, VACUUM...). Errors name the migration, line and column of the statement.

    Statements go in batches, one DO block each, inside a savepoint: a migration is hundreds of statements and
    every wait for the server counts. A batch that fails is rolled back and run again one statement at a time, so
    the error names the statement that failed."""
    import psycopg

    for batch in _batches(statements):
        if check is not None:
            check()  # cancelled or out of time: stop before the next statement
        if len(batch) > 1:
            try:
                conn.execute(f"savepoint migration_batch;\n{_contained(*(st.text for st in batch))};\n"
                             "release savepoint migration_batch")
                continue
            except psycopg.Error:
                if check is not None:
                    check()
                conn.execute("rollback to savepoint migration_batch")
        for st in batch:
            try:
                conn.execute(_contained(st.text))
            except psycopg.Error as exc:
                if check is not None:
                    check()  # the statement was cancelled for that reason
                diag = exc.diag
                message = (diag.message_primary or str(exc)).strip()
                if diag.sqlstate:
                    message += f" [SQLSTATE {diag.sqlstate}]"
                if diag.message_detail:
                    message += f"; detail: {diag.message_detail.strip()}"
                raise StatementFailed(f"migration {migration} of {of} failed: line {st.line}, column {st.column}: "
                                      f"`{_first_line(st.text)}`: {message}", field="migrations",
                                      sqlstate=diag.sqlstate,
                                      fix=diag.message_hint or FAILED_FIX.get(diag.sqlstate or "", FAILED_FIX[""])
                                      ) from None


FAILED_FIX = {
    "": "fix the SQL (or verify against an empty database)",
    # verify's lock_timeout: waiting longer would queue every other session's queries on the table behind it
    "55P03": "another session holds a lock this statement needs (an open transaction of your app): end it and run "
             "verify again, or verify against a throwaway database (no database_url)",
}


def _batches(statements: list[Statement]) -> list[list[Statement]]:
    out: list[list[Statement]] = []
    size = 0
    for st in statements:
        if not out or len(out[-1]) >= BATCH_STATEMENTS or size + len(st.text) > BATCH_CHARS:
            out.append([])
            size = 0
        out[-1].append(st)
        size += len(st.text)
    return out


class StatementFailed(BlueprintError):
    """A migration statement failed on PostgreSQL; the message has its position and PostgreSQL's error."""

    def __init__(self, message: str, *, field: str, sqlstate: str | None, fix: str) -> None:
        self.sqlstate = sqlstate
        super().__init__(message, field=field, fix=fix)


def _contained(*texts: str) -> str:
    """`DO $o$ begin execute $i$<text>$i$; ... end $o$` with dollar tags whose stem never occurs in any text
    (so no tag can close early, not even one straddling the end of a text)."""
    n = 0
    while any(f"bp{n}" in text for text in texts):
        n += 1
    inner, outer = f"$bp{n}i$", f"$bp{n}o$"
    body = " ".join(f"execute {inner}{text}{inner};" for text in texts)
    return f"do {outer} begin {body} end {outer}"

"""The platform's lints about what the APIs (REST, GraphQL, queues, storage) expose, decided from SQL.

pg_graphql exposure needs the extension: created by the audited SQL, or assumed on a Supabase
project (`audit --assume-platform`), where it is installed until a migration drops it.
"""

from __future__ import annotations

from typing import Any

from ...model.schema import Schema, Table, View
from ...model.storage import runs_in_browser
from ...sql.ident import qname
from ..platform import (
    API_ROLES,
    MISSING,
    QUEUE_API_SCHEMA,
    QUEUE_SCHEMA,
    QUEUE_TABLE_PREFIX,
    REG_TYPES_SCHEMAS_EXCLUDED,
    UNSUPPORTED_REG_TYPES,
    lists_bucket,
    managed,
)
from ..findings import Level
from ..fold import fold
from ..pins import unwrap
from ..registry import rule
from ..tree import const, function_name, nodes, qualified, strings
from .binding import _from_items
from .storage_names import object_policies
from .prefixes import is_object_name, open_prefixes, pattern_columns, pattern_hole, pieces
from .common import _once, can_select, client_policies, clients_granted, exposed, find_function, trees


def _revoke(obj: Table | View) -> str:
    return f"revoke all on table {qname(obj.schema_name, obj.name)} from public, anon, authenticated;"


@rule("BP041", platform="0017",
      why="Foreign tables cannot have row level security: whoever may select it through the API reads every "
          "row of the remote data.",
      bad="create foreign table public.remote_orders (id int) server billing;  -- granted to the API roles")
def foreign_table_in_api(r, s: Schema):
    for t in s.tables:
        if t.kind == "foreign table" and not managed(t.schema_name) and exposed(s, t):
            yield r.finding(f"Foreign table {t.qualified} is exposed to the API.", t.qualified, location=t.location,
                            fix_sql=_revoke(t))


@rule("BP042", platform="0018",
      why="pg_upgrade cannot carry reg* columns (regproc, regnamespace...) across a major version: the OIDs "
          "they store change, so the platform cannot upgrade the project.",
      bad="create table public.hooks (id int primary key, handler regproc);")
def unsupported_reg_types(r, s: Schema):
    for t in s.tables:
        if t.external or t.schema_name in REG_TYPES_SCHEMAS_EXCLUDED:
            continue
        for c in t.columns:
            if c.type.lower() in UNSUPPORTED_REG_TYPES:
                yield r.finding(f"{t.qualified}.{c.name} has the unsupported reg* type {c.type}.",
                                f"{t.qualified}.{c.name}", location=c.location or t.location)


@rule("BP043", platform="0019",
      why="With pgmq_public served, a queue table without RLS that anon or authenticated may select lets any "
          "client read (and, with more grants, consume) every message.",
      bad="alter database postgres set pgrst.db_schemas = 'public, pgmq_public';\n"
          "grant select on pgmq.q_jobs to authenticated;  -- RLS off on the queue table")
def insecure_queue_exposed_in_api(r, s: Schema):
    if QUEUE_API_SCHEMA not in s.exposed_schemas:
        return
    for t in s.tables:
        if t.schema_name == QUEUE_SCHEMA and t.name.startswith(QUEUE_TABLE_PREFIX) and t.kind == "table" \
                and not t.rls_enabled and any(can_select(s, t, role, whole=True) for role in API_ROLES):
            yield r.finding(f"Queue table {t.qualified} is readable through the API without row level security.",
                            t.qualified, location=t.location,
                            fix_sql=f"alter table {qname(t.schema_name, t.name)} enable row level security;")


@rule("BP044", platform="0025",
      why="Public buckets serve files by URL without any policy; a broad SELECT policy on storage.objects "
          "additionally lets every client list the bucket, file names and metadata included.",
      bad="insert into storage.buckets (id, name, public) values ('avatars', 'avatars', true);\n"
          "create policy read_avatars on storage.objects for select using (bucket_id = 'avatars');")
def public_bucket_allows_listing(r, s: Schema):
    policies = [p for p in object_policies(s) if p.permissive and p.command in ("select", "all")
                and (not p.roles or {"public", "anon", "authenticated"} & set(p.roles))]
    for b in s.buckets:
        if not b.public:
            continue
        broad = sorted(p.name for p in policies
                       if lists_bucket(MISSING if p.using is None else p.using_tree, b.name))
        if broad:
            yield r.finding(f"Public bucket {b.name} can be listed through {', '.join(broad)} on storage.objects.",
                            f"storage.{b.name}", location=b.location)


@rule("BP048", "public_bucket_serves_active_content", Level.WARN, ("SECURITY",),
      summary="A public storage bucket accepts content a browser runs (HTML, SVG, XML, JavaScript), or any type.",
      why="Files of a public bucket are served by URL from the project's storage origin: an uploaded SVG or HTML "
          "page runs its scripts in every visitor's browser (stored cross-site scripting), and whoever may upload "
          "decides what it says.",
      bad="insert into storage.buckets (id, name, public) values ('assets', 'assets', true);  -- any type",
      fix="List inert types only: allowed_mime_types = array['image/png', 'image/jpeg', 'image/webp'] (never "
          "image/svg+xml, text/html or a wildcard covering them), or serve the files through signed URLs "
          "(public = false).")
def public_bucket_serves_active_content(r, s: Schema):
    for b in s.buckets:
        if not b.public or not b.mime_types_read:
            continue
        if b.allowed_mime_types is None:
            yield r.finding(f"Public bucket {b.name} accepts files of any type.", f"storage.{b.name}",
                            location=b.location)
        elif active := [m for m in b.allowed_mime_types if runs_in_browser(m)]:
            yield r.finding(f"Public bucket {b.name} accepts {', '.join(active)}.", f"storage.{b.name}",
                            location=b.location)


# Functions that name the object, not the caller: storage's path helpers and PostgreSQL's own.
_OBJECT_SCHEMAS = ("storage", "pg_catalog")


def _ties_caller(tree: Any) -> bool:
    """The clause asks who the caller is: auth.uid() and friends, a helper of the app's, current_setting(), or a
    table it reads (a membership, a share list). Benefit of the doubt: any of them counts."""
    if tree is MISSING or tree is None:
        return False
    for kind, body in nodes(tree):
        if kind == "RangeVar":
            return True
        if kind == "FuncCall":
            name = function_name(body)
            if ("." in name and name.split(".")[0] not in _OBJECT_SCHEMAS) or name == "current_setting":
                return True
    return False


def _any_folder(tree: Any) -> str:
    """How the clause finds a value at any folder level, so that a caller writes under another user's or
    organisation's folder by naming their own id deeper down (`victim/<me>/file`): `<value> = any
    (storage.foldername(name))`, and the same test as an array's (`storage.foldername(name) @> array[<value>]`,
    `array[<value>] <@ ...`, `&&`, unnest(), array_position() not pinned to a level) or as the path's (`name like
    '%' || <value> || '/%'`, an unanchored regular expression, `strpos(name, <value>) > 0`): evasion round 21 e04.
    '' when none, or when a conjunct of the clause pins the first folder (`(storage.foldername(name))[1] = ...`)."""
    if _first_folder_pinned(tree):
        return ""
    pinned = {id(unwrap(x)["FuncCall"]) for kind, body in nodes(tree) if kind == "A_Expr"
              and body.get("kind") == "AEXPR_OP" and strings(body.get("name")) == ["="]
              for x, level in ((body.get("lexpr"), body.get("rexpr")), (body.get("rexpr"), body.get("lexpr")))
              if _call_of(x, "array_position") and isinstance(const(unwrap(level)), int)}
    for kind, body in nodes(tree):
        if kind == "FuncCall":
            name, args = function_name(body).split(".")[-1], body.get("args") or []
            if args and _folders(args[0]) and (name in ("unnest", "array_positions") or
                                               name == "array_position" and id(body) not in pinned):
                return f"{name}({_folders_text(args[0])})"
        if kind == "FuncCall" and function_name(body).split(".")[-1] in ("regexp_like", "textregexeq") and \
                len(body.get("args") or []) == 2:  # (regexp_like(name, <pattern>) is name ~ <pattern>)
            body, kind = {"kind": "AEXPR_OP", "name": [{"String": {"sval": "~"}}], "lexpr": body["args"][0],
                          "rexpr": body["args"][1]}, "A_Expr"
        if kind != "A_Expr":
            continue
        op, left, right = "".join(strings(body.get("name"))), body.get("lexpr"), body.get("rexpr")
        if body.get("kind") == "AEXPR_OP_ANY" and op == "=" and _folders(right) and not _fixed(left) or \
                body.get("kind") == "AEXPR_OP" and (op == "@>" and _folders(left) and not _fixed(right) or
                                                    op == "<@" and _folders(right) and not _fixed(left) or
                                                    op == "&&" and any(_folders(a) and not _fixed(b) for a, b in
                                                                       ((left, right), (right, left)))):
            split = _folders_text(next(x for x in (right, left) if _folders(x)))
            return {"=": f"= any ({split})", "@>": f"{split} @> ...", "<@": f"... <@ {split}"}.get(
                op, f"{split} && ...")
        if is_object_name(left) and not op.startswith("!"):
            if body.get("kind") == "AEXPR_SIMILAR" and _call_of(right, "similar_to_escape"):
                right = (unwrap(right)["FuncCall"].get("args") or [None])[0]
            parts = pieces(right)
            texts = [const(x) for x in parts]
            lead = "".join(t for t in texts[:next((i for i, t in enumerate(texts) if not isinstance(t, str)), 0)])
            wild = body.get("kind") in ("AEXPR_LIKE", "AEXPR_ILIKE", "AEXPR_SIMILAR") or op in ("~~", "~~*")
            regex = body.get("kind") == "AEXPR_OP" and op in ("~", "~*")
            if not all(isinstance(t, str) for t in texts) and (
                    wild and "%" in lead or regex and (not lead.startswith("^") or lead[1:3] in (".*", ".+"))):
                how = {"AEXPR_LIKE": "like", "AEXPR_ILIKE": "ilike", "AEXPR_SIMILAR": "similar to"}.get(
                    body.get("kind"), op)
                return f"name {how} '%' || ..." if wild else f"name {how} a pattern not anchored by '^'"
        for a, b in ((left, right), (right, left)):
            found = _found_in_name(a)
            bound = const(unwrap(b))
            if found is not None and isinstance(bound, int) and (op, bound) in (
                    (">", 0), (">=", 1), ("<>", 0), ("!=", 0)) and \
                    not all(isinstance(const(x), str) for x in pieces(found)):
                return f"{_call_of(a, 'position') or _call_of(a, 'strpos')}(...) > 0"
    return ""


def _conjuncts(tree: Any) -> list[Any]:
    """The top-level conjuncts of a clause (the clause itself when it is no AND)."""
    parts = [tree]
    while len(parts) == 1 and isinstance(parts[0], dict) and \
            (parts[0].get("BoolExpr") or {}).get("boolop") == "AND_EXPR":
        parts = parts[0]["BoolExpr"].get("args") or []
    return parts


def _first_folder_pinned(tree: Any) -> bool:
    """A top-level conjunct of the clause compares the first folder: `(storage.foldername(name))[1] = <value>`."""
    for part in _conjuncts(tree):
        body = part.get("A_Expr") if isinstance(part, dict) else None
        if not body or body.get("kind") != "AEXPR_OP" or strings(body.get("name")) != ["="]:
            continue
        for side in (body.get("lexpr"), body.get("rexpr")):
            cut = (unwrap(side) or {}).get("A_Indirection") if isinstance(unwrap(side), dict) else None
            index = (cut or {}).get("indirection") or []
            if cut and _folders(cut.get("arg")) and len(index) == 1 and \
                    const((index[0].get("A_Indices") or {}).get("uidx")) == 1 and \
                    not (index[0].get("A_Indices") or {}).get("is_slice"):
                return True
    return False


def _folders_text(node: Any) -> str:
    """How the message names a `_folders` array."""
    cut = unwrap(node).get("A_Indirection") if isinstance(unwrap(node), dict) else None
    if cut:
        return f"({_folders_text(cut.get('arg'))})[...]"
    return "storage.foldername(name)" if _call_of(node, "foldername") else \
        f"{_call_of(node, 'string_to_array') or 'regexp_split_to_array'}(name, '/')"


def _fixed(node: Any) -> bool:
    """Constants alone (`array['reports']`): no column, call or sub-query."""
    return not any(kind in ("ColumnRef", "FuncCall", "SubLink", "ParamRef") for kind, _ in nodes(node))


def _folders(node: Any) -> bool:
    """storage.foldername(<anything>), or the object's name split at '/' (`string_to_array(name, '/')`,
    `regexp_split_to_array(name, '/')`: its folders and then the file's name; evasion round 22 e02), casts
    aside; a slice of those reaching past the first (`(storage.foldername(name))[1:2]`: evasion round 23 e01)."""
    cut = unwrap(node).get("A_Indirection") if isinstance(unwrap(node), dict) else None
    index = (cut or {}).get("indirection") or []
    if cut and len(index) == 1 and (index[0].get("A_Indices") or {}).get("is_slice"):
        span = index[0]["A_Indices"]
        return _folders(cut.get("arg")) and not (const(span.get("uidx")) == 1 and const(span.get("lidx")) in (1, None))
    if _call_of(node, "foldername"):
        return True
    if not (_call_of(node, "string_to_array") or _call_of(node, "regexp_split_to_array")):
        return False
    args = unwrap(node)["FuncCall"].get("args") or []
    return len(args) == 2 and is_object_name(args[0]) and (const(unwrap(args[1])) == "/" or const(
        unwrap(args[1])) == "/+" and _call_of(node, "regexp_split_to_array"))


def _call_of(node: Any, name: str) -> str:
    """The function's name when the node (casts aside) calls it, '' otherwise."""
    node = unwrap(node)
    call = node.get("FuncCall") if isinstance(node, dict) else None
    return name if isinstance(call, dict) and function_name(call).split(".")[-1] == name else ""


def _found_in_name(node: Any) -> Any:
    """x of position(x in <object name>) or strpos(<object name>, x); None otherwise."""
    node = unwrap(node)
    call = node.get("FuncCall") if isinstance(node, dict) else None
    args = (call.get("args") or []) if isinstance(call, dict) else []
    name = function_name(call).split(".")[-1] if isinstance(call, dict) else ""
    return args[1] if name in ("position", "strpos") and len(args) == 2 and _path_text(args[0]) else None


def _path_text(node: Any) -> bool:
    """The object's name, or it with constants around it (`'/' || name`: a search for '/<id>/' at any level;
    evasion round 22)."""
    parts = pieces(node)
    names = [p for p in parts if is_object_name(p)]
    return len(names) == 1 and all(p is names[0] or isinstance(const(unwrap(p)), str) for p in parts)


def _names_folder(tree: Any) -> bool:
    """The clause reads the object's folders (storage.foldername(name)) or its name."""
    return tree not in (MISSING, None) and any(
        (kind == "FuncCall" and function_name(body).split(".")[-1] == "foldername") or
        (kind == "ColumnRef" and strings(body.get("fields"))[-1:] == ["name"]) for kind, body in nodes(tree))


def _folder_read_buckets(s: Schema) -> set[str]:
    """Buckets a permissive select policy reads by folder: their folders are where the tenancy is. So are a public
    bucket's, where its uploads are tied to the caller by folder: anyone reads its files by path (the public URL),
    and the app finds a user's files in their folder (evasion round 25 e02: Supabase's avatar update policy, `using
    (auth.uid() = owner) with check (bucket_id = 'avatars')`, moved a file into another user's folder)."""
    out: set[str] = set()
    public = {b.name for b in s.buckets if b.public}
    for p in object_policies(s):
        tree = p.using_tree if p.using is not None else None
        if p.permissive and p.command in ("select", "all") and tree is not None and _names_folder(tree):
            out |= _buckets_named(tree) or set()
        upload = (p.check_tree if p.check is not None else tree) if p.command in ("insert", "all") else None
        if p.permissive and upload is not None and _names_folder(upload) and _ties_caller(upload):
            out |= (_buckets_named(upload) or set()) & public
    return out


def _buckets_named(tree: Any) -> set[str] | None:
    """The buckets a clause is limited to (`bucket_id = 'x'`, `bucket_id in ('x', 'y')` among its top-level
    conjuncts, or in every branch of a top-level OR: `(bucket_id = 'x') or (bucket_id = 'y' and ...)`); None for
    any bucket."""
    if isinstance(tree, dict) and (tree.get("BoolExpr") or {}).get("boolop") == "OR_EXPR":
        branches = [_buckets_named(b) for b in tree["BoolExpr"].get("args") or []]
        return None if not branches or any(b is None for b in branches) else set().union(*branches)
    for part in _conjuncts(tree):
        body = part.get("A_Expr") if isinstance(part, dict) else None
        if not body or strings((body.get("lexpr") or {}).get("ColumnRef", {}).get("fields"))[-1:] != ["bucket_id"]:
            continue
        if body.get("kind") == "AEXPR_OP" and strings(body.get("name")) == ["="]:
            value = fold(body.get("rexpr"))
            return {value} if isinstance(value, str) else None
        if body.get("kind") == "AEXPR_IN":
            values = [fold(v) for v in (body.get("rexpr") or {}).get("List", {}).get("items") or []]
            return set(values) if all(isinstance(v, str) for v in values) else None
    return None


@rule("BP053", "storage_policy_not_tied_to_caller", Level.ERROR, ("SECURITY",),
      summary="A policy on storage.objects lets clients write files, or read a private bucket's, without asking "
              "who the caller is.",
      why="storage.objects holds every bucket's files. A policy that only names the bucket (`bucket_id = "
          "'documents'`) lets every signed-in user (anon too, for a policy without `to`) read all of a private "
          "bucket's files, or upload over, rename and delete everyone's files in any bucket. A read granted to "
          "anon by name is taken as a deliberate publication.",
      bad="create policy docs_read on storage.objects for select to authenticated using (bucket_id = 'documents');",
      fix="Tie the object to the caller: its folder to the caller's organisations ((storage.foldername(name))[1]"
          "::uuid = any (array(select private.organization_ids_with_role('viewer')))) or to the caller "
          "(owner_id = (select auth.uid())::text, or the first folder = (select auth.uid())::text). Name the "
          "folder's level: `(select auth.uid())::text = any (storage.foldername(name))` lets a caller upload into "
          "`<someone else>/<their own id>/`. An upload or an update that tests only the owner (`owner_id = "
          "(select auth.uid())::text`) must test the folder too where the bucket is read by folder, or the owner "
          "puts their file into another organisation's folder.")
def storage_policy_not_tied_to_caller(r, s: Schema):
    private = {b.name for b in s.buckets if not b.public}
    public = {b.name for b in s.buckets if b.public}
    published = _published_buckets(s)
    folder_read = _folder_read_buckets(s)
    for p in object_policies(s):
        if not p.permissive or (p.roles and not {"public", "anon", "authenticated"} & set(p.roles)):
            continue
        commands = ("select", "insert", "update", "delete") if p.command == "all" else (str(p.command),)
        using = MISSING if p.using is None else p.using_tree
        check = MISSING if p.check is None else p.check_tree
        if using is None or check is None:
            continue  # text without a parse tree (a model the generator built): nothing to read
        loose, anywhere, moves = [], "", []
        for command in commands:
            # New rows meet WITH CHECK (USING where a FOR ALL policy has none); the rows a command reaches, USING.
            clause = (check if check is not MISSING or p.command == "insert" else using) if command == "insert" \
                else using
            if command in ("insert", "update") and _ties_caller(clause):
                # The row a file becomes: WITH CHECK (USING without one). Where the bucket's reads go by folder, an
                # owner test alone lets the owner move their file into any organisation's folder, or upload one
                # there (evasion round 8: an invoice planted in another organisation's folder).
                moved = (check if check is not MISSING else using) if command == "update" else clause
                if not _names_folder(moved) and _buckets_named(moved) is not None and \
                        (_buckets_named(moved) or set()) & folder_read:
                    moves.append(command)
                    continue
            if _ties_caller(clause):
                level = _any_folder(clause) if command in ("insert", "update") else ""
                if not level:
                    continue
                anywhere = level
            if command == "select" and "anon" in p.roles:
                continue  # a read granted to anon by name is a publication, not a forgotten check
            if command in ("select", "insert"):
                named = _buckets_named(clause) if clause is not MISSING else None
                # A public bucket's reads are its own rules' (BP044/BP048); an upload anyone may make into one
                # is not (fphunt: `with check (bucket_id = 'media')` let every signed-in user publish files). A
                # bucket the SQL does not create is judged by its own rules.
                if named is not None and not named & private and (command == "select" or not named & public):
                    continue
                if command == "select" and named is not None and named <= published:
                    continue  # anon reads these buckets' files by name already: signed-in readers add nobody
            loose.append(command)
        if loose:
            how = f"matching the caller at any folder level ({anywhere})" if anywhere \
                else "without asking who the caller is"
            yield r.finding(f"Policy {p.name} on storage.objects lets clients {', '.join(loose)} files {how}.",
                            f"storage.objects.{p.name}", location=p.location)
        elif moves:
            how = " and ".join({"insert": "upload a file into any folder", "update": "move a file into any folder"}[c]
                               for c in moves)
            yield r.finding(f"Policy {p.name} on storage.objects lets clients {how} (it tests the owner, not the "
                            "folder), and the bucket is read by folder: a file planted in another organisation's "
                            "folder.", f"storage.objects.{p.name}", location=p.location)


def _published_buckets(s: Schema) -> set[str]:
    """Buckets whose every file a permissive select policy granted to anon by name reads: its USING is the bucket
    test alone (`bucket_id = 'x'`, `bucket_id in (...)`); one that also asks for a folder or a name publishes
    only those files."""
    out: set[str] = set()
    for p in object_policies(s):
        tree = p.using_tree if p.using is not None else None
        # One comparison (or an OR of them, a bucket each), not an AND of several: `_buckets_named` reads it when
        # it is the bucket test.
        branches = (tree.get("BoolExpr") or {}).get("args") if isinstance(tree, dict) and \
            (tree.get("BoolExpr") or {}).get("boolop") == "OR_EXPR" else [tree]
        if p.permissive and p.command in ("select", "all") and "anon" in (p.roles or []) and branches and \
                all(isinstance(b, dict) and "A_Expr" in b for b in branches):
            out |= _buckets_named(tree) or set()
    return out


def _graphql_exposed(s: Schema, role: str):
    if not any(e.name == "pg_graphql" for e in s.extensions):
        return
    # As pg_graphql reflects relations: a partitioned table's root is not one (its partitions are).
    relations: list[Table | View] = [t for t in s.tables if not t.external and not t.partitioned]
    for obj in [*relations, *s.views]:
        if not managed(obj.schema_name) and can_select(s, obj, role):
            kind = getattr(obj, "kind", None) or ("materialized view" if obj.materialized else "view")
            yield obj, kind


@rule("BP092", "storage_path_from_client_row", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A policy on storage.objects admits a file because a row of a table clients write names its path, "
              "and does not tie the file's folder to that row.",
      why="The row says which organisation a file belongs to, but whoever may write such rows chooses the path: a "
          "member writes a row of their own organisation naming another organisation's file "
          "(`<their organisation>/contract.pdf`) and reads, replaces or deletes it through the policy. The path "
          "proves nothing unless the file's folder is the row's organisation (or owner) too (evasion round 8).",
      bad="create policy files_read on storage.objects for select to authenticated using (bucket_id = 'documents'\n"
          "  and exists (select 1 from public.documents d where d.storage_path = objects.name\n"
          "    and d.organization_id = any (array(select private.organization_ids_with_role('viewer')))));",
      fix="Tie the folder to the row in the same test: `and (storage.foldername(objects.name))[1]::uuid = "
          "d.organization_id`; or let only the server write the path (grant insert and update of the other "
          "columns to clients).")
def storage_path_from_client_row(r, s: Schema):
    tables = {t.qualified: t for t in s.tables}
    for p in object_policies(s):
        if not p.permissive or (p.roles and not {"public", "anon", "authenticated"} & set(p.roles)):
            continue
        found = next((hit for _, tree, _ in trees(p) for kind, body in nodes(tree) if kind == "SubLink"
                      and (hit := _path_column(s, (body.get("subselect") or {}).get("SelectStmt"), tables))), None)
        if found:
            t, col = found
            yield r.finding(f"Policy {p.name} on storage.objects admits a file whose path {t.qualified}.{col} names, "
                            "a column clients write, without tying the file's folder to that row.",
                            f"storage.objects.{p.name}", location=p.location)


def _path_column(s: Schema, select: dict, tables: dict[str, Table]) -> tuple[Table, str] | None:
    """(table, column) where the sub-query's own FROM reads a table clients may write `column` of, and its WHERE
    equates that column with the object's name, with no test of the object's folders (storage.foldername()) or
    other use of its name beside it."""
    aliases: dict[str, Table] = {}
    for kind, rv in _from_items(select or {}):
        t = tables.get(qualified(rv, "public")) if kind == "RangeVar" else None
        if t is not None:
            aliases[(rv.get("alias") or {}).get("aliasname") or rv.get("relname")] = t
    where = select.get("whereClause")
    if not aliases or where is None:
        return None

    def object_name(node) -> bool:
        fields = strings((unwrap(node) or {}).get("ColumnRef", {}).get("fields")) if isinstance(node, dict) else []
        return fields in (["objects", "name"], ["storage", "objects", "name"]) or \
            (fields == ["name"] and not any(t.column("name") for t in aliases.values()))

    def row_column(node) -> tuple[Table, str] | None:
        fields = strings((unwrap(node) or {}).get("ColumnRef", {}).get("fields")) if isinstance(node, dict) else []
        if len(fields) == 2 and fields[0] in aliases and aliases[fields[0]].column(fields[1]):
            return aliases[fields[0]], fields[1]
        owners = [t for t in aliases.values() if len(fields) == 1 and t.column(fields[0])]
        return (owners[0], fields[0]) if len(owners) == 1 else None

    matched = None
    names = 0
    for kind, body in nodes(where):
        if kind == "ColumnRef" and object_name({"ColumnRef": body}):
            names += 1
        if kind == "FuncCall" and function_name(body).split(".")[-1] in ("foldername", "filename"):
            return None  # the folder is read too: BP053 and the folder's own test judge it
        if kind == "A_Expr" and body.get("kind") == "AEXPR_OP" and strings(body.get("name")) == ["="] and not matched:
            sides = (body.get("lexpr"), body.get("rexpr"))
            for a, b in (sides, sides[::-1]):
                column = row_column(a)
                if column and object_name(b):
                    matched = column
    if matched is None or names > 1:
        return None  # the name is read again (a prefix test beside the equality): left to the other rules
    t, col = matched
    writes = any(clients_granted(s, t, command, col) and (client_policies(t, command) or not t.rls_enabled)
                 for command in ("insert", "update"))
    return matched if writes else None


@rule("BP045", platform="0026",
      why="pg_graphql's introspection shows anon every relation it may select, with its columns and "
          "relationships, even when RLS hides the rows: the schema is public to anyone with the anon key.",
      bad="create extension pg_graphql;\ncreate table public.invoices (...);  -- anon keeps its legacy grants")
def pg_graphql_anon_table_exposed(r, s: Schema):
    for obj, kind in _graphql_exposed(s, "anon"):
        name = f"{obj.schema_name}.{obj.name}"
        yield r.finding(f"{kind.capitalize()} {name} is visible in the GraphQL schema to anon.", name,
                        location=obj.location,
                        fix_sql=f"revoke select on table {qname(obj.schema_name, obj.name)} from public, anon;")


@rule("BP046", platform="0027",
      why="pg_graphql's introspection shows every signed-in user each relation authenticated may select, "
          "with its columns and relationships, even when RLS hides the rows.",
      bad="create extension pg_graphql;\ngrant select on public.invoices to authenticated;")
def pg_graphql_authenticated_table_exposed(r, s: Schema):
    for obj, kind in _graphql_exposed(s, "authenticated"):
        name = f"{obj.schema_name}.{obj.name}"
        yield r.finding(f"{kind.capitalize()} {name} is visible in the GraphQL schema to signed-in users.", name,
                        location=obj.location)


@rule("BP082", "column_revoke_without_effect", Level.WARN, ("SECURITY",),
      summary="A REVOKE of some columns from an API role that holds the privilege on the whole table: it changes "
              "nothing, and the columns stay readable (or writable). The same of a GRANT of some columns beside "
              "the privilege on the whole table.",
      why="A table privilege covers every column, and column privileges are kept beside it: `revoke select "
          "(phone, home_address) on profiles from authenticated` leaves `grant select on profiles to "
          "authenticated` in place, so every teammate the policies let read a profile reads the phone number too. "
          "PostgreSQL answers the REVOKE without a warning. A GRANT of some columns restricts nothing either while "
          "the role holds the table privilege: `grant select (id, full_name) on profiles to authenticated` beside "
          "Supabase's default grants of every table in public to anon and authenticated, or followed by a later "
          "`grant select on profiles to authenticated` (or `... on all tables in schema public`) that gives back "
          "every column (evasion round 24).",
      bad="revoke select (phone, home_address) on public.profiles from anon, authenticated;",
      fix="Revoke the privilege on the table, then grant the columns that stay: `revoke select on public.profiles "
          "from anon, authenticated; grant select (id, full_name) on public.profiles to authenticated;` (or keep "
          "the private columns in a table of their own); grant a column added later by name.")
def column_revoke_without_effect(r, s: Schema):
    for t in s.tables:
        if not (t.column_revokes or t.column_grants_moot) or not exposed(s, t):
            continue
        # one finding per REVOKE statement: (privilege, columns, where) -> roles
        done: dict[tuple, tuple[str, tuple[str, ...], object, list[str]]] = {}
        for role, privilege, columns, location in t.column_revokes:
            if (role in API_ROLES or role == "public") and _holds_whole(t, role, privilege):
                done.setdefault((privilege, tuple(columns), id(location)),
                                (privilege, tuple(columns), location, []))[3].append(role)
        for privilege, columns, location, roles in done.values():
            who = " and ".join(dict.fromkeys(roles))
            yield r.finding(f"revoke {privilege} ({', '.join(columns)}) on {t.qualified} from {who} changes nothing: "
                            f"{who} {'hold' if len(set(roles)) > 1 else 'holds'} {privilege} on the whole table, "
                            "every column included.", t.qualified, location=location or t.location)
        # one finding per statement that made column grants moot, of the roles still holding the whole table
        moot: dict[tuple, tuple[str, tuple[str, ...], object, list[str]]] = {}
        for role, privilege, columns, location in t.column_grants_moot:
            if role in ("anon", "authenticated") and _holds_whole(t, role, privilege):
                entry = moot.setdefault((privilege, tuple(columns), id(location)),
                                        (privilege, tuple(columns), location, []))
                if role not in entry[3]:
                    entry[3].append(role)
        for privilege, columns, location, roles in moot.values():
            who = " and ".join(roles)
            yield r.finding(f"grant {privilege} ({', '.join(columns)}) on {t.qualified} to {who} restricts nothing: "
                            f"{who} {'hold' if len(roles) > 1 else 'holds'} {privilege} on the whole table, every "
                            "column included.", t.qualified, location=location or t.location)


def _holds_whole(t, role: str, privilege: str) -> bool:
    return any(not h.columns and h.privilege == privilege for h in t.grants.get(role, []))


@rule("BP083", "storage_prefix_without_separator", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A storage policy matches an object's path by a prefix (an organisation's slug or id) that does not "
              "end with '/': another organisation's folder that starts the same way matches too.",
      why="`starts_with(name, o.slug)` holds for `acme-corp/contract.pdf` when the caller's organisation is `acme`, "
          "and for every file when its slug is empty: whoever creates an organisation with a chosen slug reads "
          "(or writes) the files of every organisation whose folder starts with it. `name like o.slug || '%'` and "
          "`name ^@ o.slug` are the same test, and so are `name ~ ('^' || o.slug)`, `left(name, length(o.slug)) = "
          "o.slug`, `substr(name, 1, length(o.slug)) = o.slug`, `position(o.slug in name) = 1`, `strpos(name, "
          "o.slug) = 1` and `name >= o.slug and name < o.slug || '~'` (evasion round 16). A LIKE pattern made "
          "from a column is a pattern whoever sets the column writes, separator or not: with `name like o.slug || "
          "'/%'`, a user who creates an organisation with the slug '%' reads and writes every organisation's "
          "files, and 'ac_e' another's (evasion round 11). "
          "A column of a uuid or a number, one a CHECK holds to a regular expression without wildcards, or one a "
          "BEFORE INSERT OR UPDATE trigger always sets from such text (regexp_replace(lower(new.name), '[^a-z0-9]+', "
          "'-', 'g')) holds none, while the trigger is enabled (not left off by `disable trigger user`). A CHECK's "
          "classes are read by code point: `[A-z]` holds '_'. A function of the column is still its pattern "
          "unless it escapes the escape character and both wildcards "
          "(`replace(replace(replace(slug, '\\', '\\\\'), '%', '\\%'), '_', '\\_')`): `replace(slug, '%', '\\%')` "
          "leaves '_' (evasion round 12). A regular expression (`~`, `~*`, regexp_like, substring(... from ...)) "
          "made from a column is its pattern the same way, with '.', '*', '|', '(' and the other metacharacters: "
          "a slug kept to `[a-z0-9.-]` may be '....', which matches `acme/` (evasion round 16). A BEFORE INSERT "
          "trigger alone is enough when no client may update the column (a column grant leaving it out) and no "
          "SECURITY DEFINER function updates it.",
      bad="create policy org_files_read on storage.objects for select to authenticated using (bucket_id = "
          "'org-files' and exists (select 1 from public.organizations o where o.id = any (array(select "
          "private.organization_ids_with_role('viewer'))) and starts_with(objects.name, o.slug)));",
      fix="Compare the whole folder: `(storage.foldername(name))[1] = o.slug` (or `::uuid = o.id`), or end the "
          "prefix with the separator: `starts_with(name, o.slug || '/')`, which reads no wildcard; or bound the "
          "slug (`check (slug ~ '^[a-z0-9-]+$')`).")
def storage_prefix_without_separator(r, s: Schema):
    for p in object_policies(s):
        if p.roles and not {"public", "anon", "authenticated"} & set(p.roles):
            continue
        for tree in (p.using_tree if p.using is not None else None, p.check_tree if p.check is not None else None):
            found = open_prefixes(tree) if tree is not None else []
            if found:
                yield r.finding(f"Policy {p.name} on storage.objects matches object paths by a prefix that does not "
                                f"end with '/' ({found[0]}): a folder named longer matches too.",
                                f"storage.objects.{p.name}", location=p.location)
                break
            columns = pattern_columns(s, tree) if tree is not None else []
            if columns:
                yield r.finding(f"Policy {p.name} on storage.objects matches object paths by "
                                f"{pattern_hole(*columns[0], 'folders')}", f"storage.objects.{p.name}",
                                location=p.location)
                break



@rule("BP086", "realtime_table_without_rls", Level.ERROR, ("SECURITY", "TENANCY"),
      summary="A table in the supabase_realtime publication, outside the exposed schemas, has no row level security "
              "and an API role may select it: Realtime streams every row's changes to every subscriber.",
      why="Postgres Changes sends a change to a subscriber who may select the row, as that subscriber: their "
          "privileges and the table's RLS decide. A table kept out of the API's schemas (`internal.job_events`) but "
          "granted to authenticated and added to the publication streams every organisation's rows to any "
          "signed-in client that subscribes to it. A table in an exposed schema without RLS is BP003's.",
      bad="grant usage on schema internal to authenticated;\ngrant select on internal.job_events to authenticated;\n"
          "alter publication supabase_realtime add table internal.job_events;",
      fix="Enable row level security on the table with policies that check membership (subscribers then get only "
          "their organisations' rows), or take it out of the publication, or revoke the API roles' SELECT.")
def realtime_table_without_rls(r, s: Schema):
    if not s.realtime_tables:
        return
    every = "*" in s.realtime_tables
    for t in s.tables:
        if t.rls_enabled or t.schema_name in s.exposed_schemas or managed(t.schema_name) or \
                not (every or t.qualified in s.realtime_tables or f"{t.schema_name}.*" in s.realtime_tables):
            continue
        usage = set(s.schema_usage.get(t.schema_name, []))
        readers = [role for role in API_ROLES if (role in usage or "public" in usage) and t.grants and
                   can_select(s, t, role)]
        if readers:
            yield r.finding(f"{t.qualified} is in the supabase_realtime publication without row level security, and "
                            f"{' and '.join(readers)} may select it: Realtime sends every row's changes to every "
                            "such subscriber.", t.qualified, location=t.location)


def _public_sends(tree) -> bool:
    """realtime.send(payload, event, topic, false) whose payload carries the row (NEW or OLD): a row on a public
    channel. A payload without them (`jsonb_build_object('table', tg_table_name)`: a ping, clients fetch through
    the API) carries none."""
    for kind, body in nodes(tree):
        if kind == "FuncCall" and function_name(body) == "realtime.send":
            args = body.get("args") or []
            if len(args) >= 4 and const(unwrap(args[3])) is False and any(
                    k == "ColumnRef" and (strings(b.get("fields"))[:1] or [""])[0].lower() in ("new", "old")
                    for k, b in nodes(args[0])):
                return True
    return False


@rule("BP088", "realtime_send_public_row", Level.WARN, ("SECURITY", "TENANCY"),
      summary="A trigger on an organisation's table sends the row on a public Realtime channel "
              "(realtime.send(..., false)).",
      why="A public Broadcast channel checks no policy: whoever knows the topic (`org:<id>`, an id that shows in "
          "URLs and invitations) joins it and receives every change of that organisation's rows. The policies on "
          "realtime.messages guard private channels only.",
      bad="perform realtime.send(to_jsonb(new), tg_op, 'org:' || new.organization_id::text, false);",
      fix="Send on a private channel (`realtime.send(..., true)`, the default) with a select policy on "
          "realtime.messages that ties the topic to the caller's memberships; or use "
          "realtime.broadcast_changes on a private topic.")
def realtime_send_public_row(r, s: Schema):
    for t in (t for t in s.tables if t.tenant_key):
        for trg in t.triggers:
            f = find_function(s, trg.function)
            reading = f._body if f is not None and "realtime.send" in (f.calls or ()) else None
            if reading is not None and _once("public sends", f, lambda: any(_public_sends(x) for x in reading.trees)):
                yield r.finding(f"Trigger {trg.name} on {t.qualified} sends its rows on a public Realtime channel "
                                f"({f.qualified}: realtime.send(..., false)): anyone who knows the topic receives "
                                "them.", f"{t.qualified}.{trg.name}", location=f.location or t.location)

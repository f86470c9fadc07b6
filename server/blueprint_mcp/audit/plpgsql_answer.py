"""What a PL/pgSQL function answers, as one SQL expression, for the readings an SQL helper's `select <expression>`
gets (BP079: `begin return auth.uid() is not null; end`, evasion round 21 e05).

The body is followed statement by statement: `return <expression>` answers, an IF (and ELSIF, ELSE) or a CASE
statement becomes a CASE expression over what each branch and the statements after it answer, an assignment or a
`select <value> into <variable>` replaces the variable in what follows (DECLARE defaults first), a RAISE at level
EXCEPTION or falling off the end answers nothing (read as unknown). Anything else (a loop, a write, a handler) leaves
the function unread. A branch answering `true` or `false` is folded into the test (`case when c then true else x
end` is `c or x`, `... then false ...` is `c is not true and x`): the same rows hold, and a test it leads to (an
own-user lookup) stays in reach."""

from __future__ import annotations

from typing import Any

from .tree import const, nodes, strings

_ERROR_LEVEL = 21  # RAISE EXCEPTION as libpg_query reports it (elog ERROR)
_UNREAD: dict = {"PLpgSQL_stmt_raise": {}}  # no value (a RAISE, no RETURN reached): no reader reads this kind
_NULL: dict = {"A_Const": {"isnull": True}}
_FALSE: dict = {"A_Const": {"boolval": {}}}
_TRUE: dict = {"A_Const": {"boolval": {"boolval": True}}}
_FOUND: dict = {"ColumnRef": {"fields": [{"String": {"sval": "found"}}]}}  # (FOUND after a query not read)
_BUDGET = 64  # statements followed per function (IF branches each follow the rest of the body)


def plpgsql_answer(fn: dict, expression_at: dict[int, Any]) -> Any:
    """The expression `fn` (libpg_query's PLpgSQL_function) returns; None when the body is not only IFs,
    assignments and RETURNs. `expression_at`: id of each PLpgSQL_expr -> its parse (`select <expression>`)."""
    datums = fn.get("datums") or []
    env: dict[str, Any] = {"found": _FALSE}  # (FOUND starts false in each call)
    for datum in datums:
        var = datum.get("PLpgSQL_var") if isinstance(datum, dict) else None
        if not isinstance(var, dict) or "lineno" not in var or not var.get("refname"):
            continue  # a parameter (no line of its own) stays what the caller passes
        default = var.get("default_val")
        value = _value(default, expression_at, env) if default is not None else _NULL
        if value is None:
            return None
        env[var["refname"].lower()] = value
    block = (fn.get("action") or {}).get("PLpgSQL_stmt_block")
    budget = [_BUDGET]
    return _follow(list((block or {}).get("body") or []), env, datums, expression_at, budget) \
        if isinstance(block, dict) and not block.get("exceptions") else None


def _follow(statements: list, env: dict[str, Any], datums: list, expression_at: dict[int, Any],
            budget: list[int]) -> Any:
    for i, wrapped in enumerate(statements):
        budget[0] -= 1
        if budget[0] < 0 or not isinstance(wrapped, dict) or len(wrapped) != 1:
            return None
        kind, body = next(iter(wrapped.items()))
        rest = statements[i + 1:]
        if kind == "PLpgSQL_stmt_return":
            return _value(body.get("expr"), expression_at, env) if body.get("expr") else _UNREAD
        if kind == "PLpgSQL_stmt_raise":
            if body.get("elog_level", _ERROR_LEVEL) >= _ERROR_LEVEL:
                return _UNREAD
            continue  # a notice or warning goes on
        if kind == "PLpgSQL_stmt_block":
            if body.get("exceptions"):
                return None
            return _follow(list(body.get("body") or []) + rest, env, datums, expression_at, budget)
        if kind in ("PLpgSQL_stmt_if", "PLpgSQL_stmt_case"):
            if kind == "PLpgSQL_stmt_if":
                branches = [(body.get("cond"), body.get("then_body"))] + [
                    ((e.get("PLpgSQL_if_elsif") or {}).get("cond"), (e.get("PLpgSQL_if_elsif") or {}).get("stmts"))
                    for e in body.get("elsif_list") or [] if isinstance(e, dict)]
                otherwise: list | None = list(body.get("else_body") or [])
            else:  # a CASE statement (its WHEN tests already name the CASE's expression); no ELSE raises
                branches = [((w.get("PLpgSQL_case_when") or {}).get("expr"),
                             (w.get("PLpgSQL_case_when") or {}).get("stmts"))
                            for w in body.get("case_when_list") or [] if isinstance(w, dict)]
                otherwise = list(body.get("else_stmts") or []) if body.get("have_else") else None
            whens = []
            for cond, stmts in branches:
                test = _value(cond, expression_at, env)
                answer = _follow(list(stmts or []) + rest, env, datums, expression_at, budget)
                if test is None or answer is None:
                    return None
                whens.append((test, answer))
            last = _follow(otherwise + rest, env, datums, expression_at, budget) if otherwise is not None else _UNREAD
            return None if last is None else _case(whens, last)
        if kind == "PLpgSQL_stmt_perform":
            found = _found(body.get("expr"), expression_at, env, perform=True)
            if found is None:
                return None
            env = {**env, "found": found}
            continue
        if kind in ("PLpgSQL_stmt_assign", "PLpgSQL_stmt_execsql"):
            name = _assigned(kind, body, datums)
            value = _value(body.get("expr") or body.get("sqlstmt"), expression_at, env,
                           into=kind == "PLpgSQL_stmt_execsql")
            if name is None or value is None:
                return None
            if kind == "PLpgSQL_stmt_execsql":  # (SELECT ... INTO sets FOUND: whether a row came)
                env = {**env, "found": _found(body.get("sqlstmt"), expression_at, env) or _FOUND}
            env = {**env, name: value}
            continue
        return None
    return _UNREAD  # control reached the end without RETURN: an error


def _assigned(kind: str, body: dict, datums: list) -> str | None:
    """The one variable an assignment or a SELECT ... INTO sets."""
    if kind == "PLpgSQL_stmt_assign":
        varno = body.get("varno", -1)
        datum = datums[varno] if isinstance(varno, int) and 0 <= varno < len(datums) else {}
        var = datum.get("PLpgSQL_var") if isinstance(datum, dict) else None
        return var["refname"].lower() if isinstance(var, dict) and var.get("refname") else None
    if not body.get("into"):
        return None
    target = body.get("target") or {}
    row = target.get("PLpgSQL_row") or {}
    fields = row.get("fields") or []
    if len(fields) == 1 and fields[0].get("name"):
        return fields[0]["name"].lower()
    var = target.get("PLpgSQL_var") or target.get("PLpgSQL_rec") or {}  # (`declare p record`: round 23 e03)
    return var["refname"].lower() if var.get("refname") else None


def _value(wrapped: Any, expression_at: dict[int, Any], env: dict[str, Any], into: bool = False) -> Any:
    """The expression a PL/pgSQL expression holds, its variables replaced by their values; a query read INTO a
    variable is its scalar sub-query (`select auth.uid() into v`: the value itself)."""
    expr = (wrapped or {}).get("PLpgSQL_expr") if isinstance(wrapped, dict) else None
    tree = expression_at.get(id(expr)) if isinstance(expr, dict) else None
    statements = tree if isinstance(tree, list) else [tree]
    stmt = (statements[0] or {}).get("stmt") if len(statements) == 1 and isinstance(statements[0], dict) else None
    select = stmt.get("SelectStmt") if isinstance(stmt, dict) else None
    if not isinstance(select, dict):
        return None
    targets = select.get("targetList") or []
    if len(targets) != 1:
        return None
    if set(select) - {"targetList", "limitOption", "op"}:
        if not into:
            return None
        return _bound({"SubLink": {"subLinkType": "EXPR_SUBLINK", "subselect": {"SelectStmt": select}}}, env)
    return _bound((targets[0].get("ResTarget") or {}).get("val"), env)


def _found(wrapped: Any, expression_at: dict[int, Any], env: dict[str, Any], perform: bool = False) -> Any:
    """What FOUND holds after a PERFORM or a SELECT ... INTO of `wrapped`: `exists (<the query>)` (true for one
    without FROM or WHERE); None for another query, and for a PERFORM that may do more than read rows (a function
    called in its list), whose effects the reading does not follow (evasion round 22 e03: `perform 1 from
    public.profiles where id = auth.uid(); return found;`)."""
    expr = (wrapped or {}).get("PLpgSQL_expr") if isinstance(wrapped, dict) else None
    tree = expression_at.get(id(expr)) if isinstance(expr, dict) else None
    statements = tree if isinstance(tree, list) else [tree]
    stmt = (statements[0] or {}).get("stmt") if len(statements) == 1 and isinstance(statements[0], dict) else None
    select = stmt.get("SelectStmt") if isinstance(stmt, dict) else None
    if not isinstance(select, dict) or select.get("op", "SETOP_NONE") != "SETOP_NONE" or \
            perform and any(k == "FuncCall" for k, _ in nodes(select.get("targetList"))):
        return None
    if not select.get("fromClause"):
        return _TRUE if not select.get("whereClause") else None
    kept = {k: v for k, v in select.items() if k not in ("intoClause",)}
    return _bound({"SubLink": {"subLinkType": "EXISTS_SUBLINK", "subselect": {"SelectStmt": kept}}}, env)


def _bound(node: Any, env: dict[str, Any]) -> Any:
    """`node` with each bare name of a variable replaced by its value."""
    if not env:
        return node
    if isinstance(node, list):
        return [_bound(x, env) for x in node]
    if not isinstance(node, dict):
        return node
    if "ColumnRef" in node and len(node) == 1:
        names = strings(node["ColumnRef"].get("fields"))
        if len(names) == 1 and names[0].lower() in env:
            return env[names[0].lower()]
        return node
    return {k: _bound(v, env) for k, v in node.items()}


def _case(whens: list[tuple[Any, Any]], otherwise: Any) -> Any:
    """CASE WHEN test THEN answer ... ELSE otherwise END, a `true` or `false` answer folded into the test."""
    out = otherwise
    for test, answer in reversed(whens):
        flag, rest = _flag(answer), _flag(out)
        if flag is True:
            out = test if rest is False else {"BoolExpr": {"boolop": "OR_EXPR", "args": [test, out]}}
        elif flag is False:
            failed = {"BooleanTest": {"arg": test, "booltesttype": "IS_NOT_TRUE"}}
            out = failed if rest is True else {"BoolExpr": {"boolop": "AND_EXPR", "args": [failed, out]}}
        else:
            out = {"CaseExpr": {"args": [{"CaseWhen": {"expr": test, "result": answer}}], "defresult": out}}
    return out


def _flag(node: Any) -> bool | None:
    """True or False for the constant `true` or `false`; None for anything else."""
    value = const(node) if isinstance(node, dict) and "boolval" in (node.get("A_Const") or {}) else None
    return value if isinstance(value, bool) else None

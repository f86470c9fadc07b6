"""Policy predicates as text that remembers its columns, and the membership helper they call."""

from __future__ import annotations

from ..model import Blueprint
from ..model.schema import Command, Function, Policy
from .columns import ORG
from .ident import ident, literal, object_name
from ..model.blueprint import ROLE_TYPE

HELPER = "organization_ids_with_role"
API_ROLE = "authenticated"


CALLER = "(select auth.uid())"


def returning_query(query: str) -> str:
    """A PL/pgSQL body returning the rows of `query`. The policies' definer helpers are PL/pgSQL, not SQL:
    a SQL function that cannot be inlined (SECURITY DEFINER, SET search_path) is parsed and planned again
    at every call and returns a set one call per row, each saving and restoring its settings; PL/pgSQL
    plans once per session. Measured on PostgreSQL 15: 45 -> 13 us per call for a member of 3
    organisations, 87 -> 19 us for 50 (bench/policy_speed.py shows the effect on whole statements).
    The caller's id is read once into a variable, a parameter of the cached plan, rather than by an init
    plan inside it: 5-8 us less per call (a statement's helper calls are most of its policy's cost). The
    query qualifies every column, so a bare `caller` is always the variable: `use_variable` says so to
    PL/pgSQL, which would otherwise refuse the query when a table it reads has a column named caller."""
    declare = ""
    if CALLER in query:
        declare = "#variable_conflict use_variable\ndeclare\n  caller uuid := auth.uid();\n"
        query = query.replace(CALLER, "caller")
    return declare + "begin\n  return query\n" + "\n".join("  " + line for line in query.splitlines()) + ";\nend"


def helper_function(bp: Blueprint) -> Function:
    return Function(
        schema_name="private", name=HELPER, args=f"min_role public.{ROLE_TYPE}", arg_types=f"public.{ROLE_TYPE}",
        returns="setof uuid", language="plpgsql", security_definer=True, volatility="stable",
        body=returning_query(
            "select m.organization_id\n"
            "  from public.organization_members m\n"
            " where m.user_id = (select auth.uid())\n"
            "   and m.role >= min_role"
        ),
        comment="Organisations where the caller holds min_role or higher. Definer: reads memberships past RLS.",
        execute_roles=["authenticated", "service_role"],
    )


class Pred(str):
    """A policy predicate that remembers the columns it filters on (each needs an index)."""

    columns: tuple[str, ...] = ()

    @classmethod
    def of(cls, text: str, columns: tuple[str, ...] = ()) -> "Pred":
        p = cls(text)
        p.columns = columns
        return p


def uid() -> str:
    return "(select auth.uid())"


def in_orgs(role: str, column: str = ORG) -> Pred:
    """The fast membership predicate (see the module docstring)."""
    return Pred.of(f"{ident(column)} = any (array(select private.{HELPER}({literal(role)})))", (column,))


def owned_orgs(column: str = ORG) -> Pred:
    """The organisations the caller is the primary owner of (organizations.owner_user_id), read under the
    organisations' own policy, whose owner branch admits them."""
    return Pred.of(f"{ident(column)} = any (array(select o.id from public.organizations o "
                   f"where o.owner_user_id = {uid()}))", (column,))


def is_me(column: str) -> Pred:
    return Pred.of(f"{ident(column)} = {uid()}", (column,))


def _join(op: str, other: str, parts: tuple[str, ...]) -> Pred:
    text = f" {op} ".join(p if f" {other} " not in p else f"({p})" for p in parts)
    cols = tuple(dict.fromkeys(c for p in parts for c in getattr(p, "columns", ())))
    return Pred.of(text, cols)


def both(*parts: str) -> Pred:
    return _join("and", "or", parts)


def either(*parts: str) -> Pred:
    return _join("or", "and", parts)


def policy(table: str, command: Command, *, using: str | None = None, check: str | None = None,
           comment: str = "") -> Policy:
    columns = [c for pred in (using, check) for c in getattr(pred, "columns", ())]
    return Policy(name=object_name(table, command.value, suffix="policy"), command=command, roles=[API_ROLE],
                  using=None if using is None else str(using), check=None if check is None else str(check),
                  comment=comment, columns=list(dict.fromkeys(columns)))

"""Storage: bucket rows and the policies on storage.objects, keyed by the organisation folder.

storage.objects belongs to the platform and is shared by every bucket, so each command gets ONE
policy whose branches are `bucket_id = '<bucket>' and <grants>`: several permissive policies per
command would all be evaluated for every object. The organisation is the object's first folder,
read with split_part (built in, no per-row function of ours) and compared as text with the
caller's organisations, computed once per statement.
"""

from __future__ import annotations

from ..model import Blueprint
from ..model.access import Grant
from ..model.meaning import bucket_grants, member_roles
from ..model.schema import Command, Policy, StorageBucket
from .access import ROLE_SET_HELPER
from .ident import literal, object_name
from .predicates import HELPER, Pred, both, either
from ..model.blueprint import ROLE_TYPE

FOLDER = "split_part(name, '/', 1)"


def storage_buckets(bp: Blueprint) -> list[StorageBucket]:
    return [StorageBucket(name=b.name, public=b.public, file_size_limit=b.max_file_bytes,
                          allowed_mime_types=b.mime_types) for b in bp.storage]


def _orgs_as_text(bp: Blueprint, roles: list[str]) -> str:
    names = [r.name for r in bp.tenancy.roles]
    if roles == names[: len(roles)]:
        call = f"private.{HELPER}({literal(roles[-1])})"
    else:
        call = (f"private.{ROLE_SET_HELPER}(array[{', '.join(literal(r) for r in roles)}]"
                f"::public.{ROLE_TYPE}[])")
    return f"{FOLDER} = any (array(select o::text from {call} o))"


def _grant_pred(bp: Blueprint, g: Grant) -> Pred:
    parts: list[str] = []
    roles = member_roles(bp, g)
    if roles is not None:
        parts.append(_orgs_as_text(bp, roles))
    if g.own:
        parts.append("owner_id = (select auth.uid())::text")
    return both(*parts) if parts else Pred.of("true")


def _branches(bp: Blueprint, command: str, public_only: bool = False) -> list[str]:
    out = []
    for b in bp.storage:
        grants = [g for g in bucket_grants(bp, b, command) if g.public or not public_only]
        if not grants:
            continue
        preds = list(dict.fromkeys(_grant_pred(bp, g) for g in grants))
        pred = "true" if "true" in preds else (preds[0] if len(preds) == 1 else f"({either(*preds)})")
        bucket = f"bucket_id = {literal(b.name)}"
        out.append(bucket if pred == "true" else f"{bucket} and {pred}")
    return out


def storage_policies(bp: Blueprint) -> list[Policy]:
    """One policy per command on storage.objects for signed-in callers, one select policy for anon."""
    if not bp.storage:
        return []
    prefix = bp.app.slug.replace("-", "_")
    out: list[Policy] = []
    for command in (Command.select, Command.insert, Command.update, Command.delete):
        branches = _branches(bp, command.value)
        if not branches:
            continue
        pred = branches[0] if len(branches) == 1 else " or ".join(f"({x})" for x in branches)
        name = object_name(prefix, "objects", command.value, suffix="policy")
        using = None if command is Command.insert else pred
        check = pred if command in (Command.insert, Command.update) else None
        out.append(Policy(name=name, command=command, roles=["authenticated"], using=using, check=check,
                          comment="Objects of this app's buckets, per organisation folder."))
    public = _branches(bp, "select", public_only=True)
    if public:
        pred = public[0] if len(public) == 1 else " or ".join(f"({x})" for x in public)
        out.append(Policy(name=object_name(prefix, "objects", "select", "public", suffix="policy"),
                          command=Command.select, roles=["anon"], using=pred, comment="Public buckets' objects."))
    return out

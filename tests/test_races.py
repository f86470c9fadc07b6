"""An invitation accepted while its inviter is demoted or removed, on two connections (docs/lifecycle.md L10, L11).

accept_invitation() reads the inviter's membership without locking it, so each interleaving is run for real:
whichever statement comes first, the outcome must be one the two calls could have had one after the other.
The demotion's trigger deletes the inviter's pending invitations, which takes the row lock accept holds
(`for update of i`): an accept that came first commits its join and the revocation then skips the accepted
row; a revocation that came first leaves accept nothing to find. Never a join through an invitation whose
inviter had already lost the rank when it was used.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from blueprint_mcp.verify.pg import act_as, create_user
from pgutil import build_world, migrate

pytestmark = pytest.mark.postgres

ROLES = ["owner", "admin", "member", "viewer"]
ACCEPT = "select public.accept_invitation(%s)"
# The owner takes the inviter's rank away, one way or the other.
DEMOTE = "select public.change_member_role(%s, %s, 'viewer')"
REMOVE = "delete from public.organization_members where organization_id = %s and user_id = %s"


def _world(conn: psycopg.Connection) -> tuple[Any, str, str]:
    """habit-tracker's world; the admin invites a new address as a member, whose account is confirmed."""
    migrate(conn, "habit-tracker")
    w = build_world(conn, ROLES)
    token = w.as_("admin", "select public.create_invitation(%s, %s, 'member')", (w.org1, "new@example.com"))[0][0]
    with conn.cursor() as cur:
        newcomer = create_user(cur, "new@example.com")
        cur.execute("update auth.users set email_confirmed_at = now() where id = %s", (newcomer,))
    return w, token, newcomer


def _begin_as(conn: psycopg.Connection, user: str) -> psycopg.Cursor:
    cur = conn.cursor()
    cur.execute("begin")
    act_as(cur, "authenticated", user)
    return cur


def _run_blocked(conn: psycopg.Connection, watcher: psycopg.Connection, sql: str, params: tuple) -> dict:
    """Run `sql` on `conn` in a thread, return once PostgreSQL shows it waiting on a lock; the dict gets its
    outcome ('rows' or 'error') when the thread ends."""
    outcome: dict = {}
    pid = conn.info.backend_pid

    def run() -> None:
        try:
            cur = conn.cursor()
            cur.execute(sql, params)
            outcome["rows"] = cur.fetchall() if cur.description else cur.rowcount
        except psycopg.Error as exc:
            outcome["error"] = exc
    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    waiting = "select wait_event_type from pg_stat_activity where pid = %s"
    while watcher.execute(waiting, (pid,)).fetchone() != ("Lock",):
        assert thread.is_alive(), f"{sql!r} did not wait for the other transaction: {outcome}"
        assert time.monotonic() < deadline, f"{sql!r} never waited on a lock"
        time.sleep(0.01)
    outcome["thread"] = thread
    return outcome


def _membership(w: Any, user: str) -> list[tuple]:
    return w.su("select role::text from public.organization_members where organization_id = %s and user_id = %s",
                (w.org1, user))


def _race(conn: psycopg.Connection, first: tuple, second: tuple, keep_second: bool = False) -> tuple[list, dict]:
    """(first's rows, second's outcome): `first` = (user, sql, params) runs in its transaction and holds its locks,
    `second` runs on another connection until it waits on them, first commits, second ends (committed with
    `keep_second`, else rolled back)."""
    dsn = conn.info.dsn
    with psycopg.connect(dsn) as one, psycopg.connect(dsn) as two:
        cur = _begin_as(one, first[0]).execute(first[1], first[2])
        rows = cur.fetchall() if cur.description else [("rowcount", cur.rowcount)]
        _begin_as(two, second[0])
        outcome = _run_blocked(two, conn, second[1], second[2])
        one.commit()
        outcome["thread"].join(30)
        if keep_second:
            two.commit()
        else:
            two.rollback()
    return rows, outcome


@pytest.mark.parametrize("taking", [DEMOTE, REMOVE], ids=["demoted", "removed"])
def test_a_revocation_first_leaves_the_waiting_accept_nothing_to_use(make_db, taking):
    conn = make_db("explicit")
    w, token, newcomer = _world(conn)
    _, accept = _race(conn, (w.users["owner"], taking, (w.org1, w.users["admin"])), (newcomer, ACCEPT, (token,)))
    error = accept.get("error")
    assert error is not None and error.sqlstate == "42501", accept
    assert "does not exist or was already used" in str(error)
    assert _membership(w, newcomer) == []
    assert w.su("select count(*) from public.invitations where invited_by = %s", (w.users["admin"],)) == [(0,)]


@pytest.mark.parametrize("taking", [DEMOTE, REMOVE], ids=["demoted", "removed"])
def test_an_accept_first_joins_and_the_waiting_revocation_skips_the_used_invitation(make_db, taking):
    conn = make_db("explicit")
    w, token, newcomer = _world(conn)
    joined, taken = _race(conn, (newcomer, ACCEPT, (token,)), (w.users["owner"], taking, (w.org1, w.users["admin"])),
                          keep_second=True)
    assert joined == [(w.org1,)]
    assert "error" not in taken, taken
    # As if accepted, then demoted: the newcomer joined while the inviter still held the rank.
    assert _membership(w, newcomer) == [("member",)]
    assert _membership(w, w.users["admin"]) == ([("viewer",)] if taking == DEMOTE else [])
    used = "select accepted_by::text from public.invitations where email = 'new@example.com'"
    assert w.su(used) == [(newcomer,)]
    assert w.su("select count(*) from private.invitation_tokens") == [(0,)]


# --- ownership moving while its new holder leaves, or moving twice at once (docs/lifecycle.md L05) ------------

TRANSFER = "select public.transfer_ownership(%s, %s)"
LEAVE = "delete from public.organization_members where organization_id = %s and user_id = (select auth.uid())"
OWNER_OF = "select owner_user_id::text from public.organizations where id = %s"


def test_a_transfer_to_a_member_who_is_leaving_waits_and_is_refused(make_db):
    conn = make_db("explicit")
    w, _, _ = _world(conn)
    left, transfer = _race(conn, (w.users["member"], LEAVE, (w.org1,)),
                           (w.users["owner"], TRANSFER, (w.org1, w.users["member"])))
    assert left == [("rowcount", 1)]
    # transfer_ownership read the membership before the leave committed and its role update then found no row;
    # the organisation's own guard refuses a primary owner who is not an owner member. Without it: an
    # organisation whose primary owner is no member, who could still remove every member and delete it.
    error = transfer.get("error")
    assert error is not None and error.sqlstate == "23514", transfer
    assert "the new owner must already be an owner member" in str(error)
    assert w.su(OWNER_OF, (w.org1,)) == [(w.users["owner"],)]
    assert _membership(w, w.users["member"]) == []


def test_a_member_leaving_while_ownership_moves_to_them_waits_and_is_refused(make_db):
    conn = make_db("explicit")
    w, _, _ = _world(conn)
    _, leave = _race(conn, (w.users["owner"], TRANSFER, (w.org1, w.users["member"])),
                     (w.users["member"], LEAVE, (w.org1,)))
    error = leave.get("error")
    assert error is not None and error.sqlstate == "42501", leave
    assert w.su(OWNER_OF, (w.org1,)) == [(w.users["member"],)]
    assert _membership(w, w.users["member"]) == [("owner",)]


def test_two_transfers_at_once_move_ownership_once(make_db):
    conn = make_db("explicit")
    w, _, _ = _world(conn)
    _, again = _race(conn, (w.users["owner"], TRANSFER, (w.org1, w.users["admin"])),
                     (w.users["owner"], TRANSFER, (w.org1, w.users["member"])))
    # One after the other, the second call is no longer the primary owner's: the organisation's guard reads
    # the owner the first call left and refuses it, and the member it named keeps their role.
    error = again.get("error")
    assert error is not None and error.sqlstate == "42501", again
    assert w.su(OWNER_OF, (w.org1,)) == [(w.users["admin"],)]
    assert _membership(w, w.users["member"]) == [("member",)]

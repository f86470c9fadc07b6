"""Red team 32 (session 31): combinations of access forms that verify passed and the audit called clean.

F2: the author of a row whose update grant has a `where` (a claim they edit as a draft) could give it personal data
after it left that state (an approved claim took a bank account): the side table's insert policy let its author
write it "once", whenever. Now an author an update grant admits by role gives it only as that updater."""

from __future__ import annotations

import pytest

from blueprint_mcp.templates import load_blueprint_file
from blueprint_mcp.verify.run import blueprint_migrations, verify

pytestmark = pytest.mark.postgres

LAB = "tests/fixtures/blueprints/access-lab.yaml"
# The author's branch of claims_private's insert policy before the fix: no word of the claim's status.
ONCE = ("with check (((created_by = (select auth.uid()) and organization_id = any (array(select "
        "private.organization_ids_with_role('member')))) or organization_id = any (array(select "
        "private.organization_ids_with_role('admin')))) and exists (select 1 from public.claims p where p.id = "
        "claims_private.claim_id));")
AS_UPDATER = ("with check ((organization_id = any (array(select private.organization_ids_with_role('admin'))) and "
              "exists (select 1 from public.claims p where p.id = claims_private.claim_id)) or (exists (select 1 "
              "from public.claims where claims.id = claims_private.claim_id and (created_by = (select auth.uid()) "
              "and status = 'draft' and organization_id = any (array(select "
              "private.organization_ids_with_role('member')))))));")


@pytest.fixture(scope="module")
def db_url(pg_cluster):
    pg_cluster.create_database("redteam32")
    yield f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/redteam32"
    pg_cluster.drop_database("redteam32")


def test_f2_the_author_gives_personal_data_only_while_they_may_edit_the_row(db_url):
    bp = load_blueprint_file(LAB)
    migrations = blueprint_migrations(bp)
    policies = [m for m in migrations if AS_UPDATER in m]
    assert len(policies) == 1
    # The old policy is a leak verify names: the member author writes the personal data of an approved claim.
    report = verify(source="F2", migrations=[m.replace(AS_UPDATER, ONCE) for m in migrations], blueprint=bp,
                    database_url=db_url)
    assert [(f.verdict, f.attack) for f in report.failures] == [
        ("LEAK", "insert claims_private under member's claims in org1")]

"""Holes an independent attack found in the templates, each pinned on PostgreSQL: the attack that worked, now
refused, and the legitimate write beside it still allowed. Every one failed before its template changed."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest

from blueprint_mcp.templates import load_blueprint_file
from blueprint_mcp.verify.pg import create_user

from pgutil import build_world, migrate, run_as

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def shop(make_db):
    """e-commerce: a store (org1) with a manager, a shopper linked through a customer row, an open, a converted
    and an abandoned cart, an order placed from the converted one, and a published product."""
    conn = make_db()
    migrate(conn, "e-commerce")
    w = build_world(conn, ["owner", "manager", "fulfilment"])
    with conn.cursor() as cur:
        w.users["shopper"] = create_user(cur, "shopper@example.com", full_name="Shopper")
    customer = w.su("insert into public.customers (organization_id, user_id) values (%s, %s) returning id",
                    (w.org1, w.users["shopper"]))[0][0]
    carts = {status: w.su("insert into public.carts (organization_id, customer_id, status) values (%s, %s, %s) "
                          "returning id", (w.org1, customer, status))[0][0]
             for status in ("open", "converted", "abandoned")}
    product = w.su("insert into public.products (organization_id, name, slug, price_cents, status) "
                   "values (%s, 'Mug', 'mug', 900, 'published') returning id", (w.org1,))[0][0]
    for status in ("open", "converted"):
        w.su("insert into public.cart_items (organization_id, cart_id, product_id, quantity) values (%s, %s, %s, 1)",
             (w.org1, carts[status], product))
    order = w.su("insert into public.orders (organization_id, customer_id, cart_id, order_number, subtotal_cents, "
                 "total_cents) values (%s, %s, %s, 'A-1', 900, 900) returning id",
                 (w.org1, customer, carts["converted"]))[0][0]
    return w, carts, product, order


def test_a_shopper_writes_the_items_of_an_open_cart_only(shop):
    """Found by attack: cart_items' grants ignored the cart's status, so the basket an order was placed from
    could be rewritten afterwards (`under: cart_id`: items of a cart the shopper may still edit)."""
    w, carts, product, _ = shop
    items = "public.cart_items"
    assert w.count("shopper", f"update {items} set quantity = 2 where cart_id = %s", (carts["open"],)) == 1
    assert w.count("shopper", f"update {items} set quantity = 99 where cart_id = %s", (carts["converted"],)) == 0
    assert w.count("shopper", f"delete from {items} where cart_id = %s", (carts["converted"],)) == 0
    assert w.denied("shopper", f"insert into {items} (organization_id, cart_id, product_id, quantity) "
                    "values (%s, %s, %s, 5)", (w.org1, carts["abandoned"], product)) == "42501"
    assert w.su(f"select quantity from {items} where cart_id = %s", (carts["converted"],)) == [(1,)]
    # Staff building a phone order write the items of a cart still in play, never of the one an order was placed
    # from (red team round 7: fulfilment rewrote a placed order's basket, quantities and lines, after checkout).
    assert w.count("fulfilment", f"update {items} set quantity = 3 where cart_id = %s", (carts["open"],)) == 1
    assert w.count("fulfilment", f"insert into {items} (organization_id, cart_id, product_id, quantity) "
                   "values (%s, %s, %s, 2)", (w.org1, carts["abandoned"], product)) == 1
    assert w.count("fulfilment", f"update {items} set quantity = 3 where cart_id = %s", (carts["converted"],)) == 0
    assert w.count("fulfilment", f"delete from {items} where cart_id = %s", (carts["converted"],)) == 0
    assert w.denied("fulfilment", f"insert into {items} (organization_id, cart_id, product_id, quantity) "
                    "values (%s, %s, %s, 5)", (w.org1, carts["converted"], product)) == "42501"
    assert w.su(f"select quantity from {items} where cart_id = %s", (carts["converted"],)) == [(1,)]
    assert w.count("shopper", f"delete from {items} where cart_id = %s", (carts["open"],)) == 1


def test_a_manager_cannot_delete_the_cart_an_order_was_placed_from(shop):
    """Found by attack: deleting a converted cart set orders.cart_id to null, a client rewriting the ledger
    no client writes (the audit log showed an UPDATE on orders by the manager)."""
    w, carts, _, order = shop
    assert w.count("manager", "delete from public.carts where id = %s", (carts["converted"],)) == 0
    assert w.su("select cart_id from public.orders where id = %s", (order,)) == [(carts["converted"],)]
    assert w.count("manager", "delete from public.carts where id = %s", (carts["abandoned"],)) == 1


def test_a_converted_cart_cannot_be_turned_back_to_be_deleted(shop):
    """Found by attack: a manager may delete open and abandoned carts, so they set the converted cart to abandoned
    first, then deleted it (and orders.cart_id with it). Converted is final for clients (transitions, A28)."""
    w, carts, _, order = shop
    # staff update only carts still in play (open or abandoned), and the transitions refuse leaving converted
    assert w.count("manager", "update public.carts set status = 'abandoned' where id = %s", (carts["converted"],)) == 0
    assert w.count("fulfilment", "update public.carts set status = 'open' where id = %s", (carts["converted"],)) == 0
    assert w.su("select status from public.carts where id = %s", (carts["converted"],)) == [("converted",)]
    assert w.count("manager", "delete from public.carts where id = %s", (carts["converted"],)) == 0
    assert w.su("select cart_id from public.orders where id = %s", (order,)) == [(carts["converted"],)]
    # staff may still abandon an open cart and reopen it; checkout (the service role) converts one
    assert w.count("manager", "update public.carts set status = 'abandoned' where id = %s", (carts["open"],)) == 1
    assert w.count("manager", "update public.carts set status = 'open' where id = %s", (carts["open"],)) == 1
    assert w.denied("manager", "update public.carts set status = 'converted' where id = %s", (carts["open"],)) \
        == "42501"
    run_as(w.conn, "service_role", None, "update public.carts set status = 'converted' where id = %s",
           (carts["open"],))


@pytest.mark.parametrize("template,staff", [("marketplace", "shipper"), ("e-commerce", "fulfilment")])
def test_a_shipped_parcel_cannot_be_set_back_to_preparing_and_deleted(make_db, template, staff):
    """Found by attack: "only a parcel still being prepared may be deleted" was bypassed in two steps, setting a
    shipped parcel back to preparing and deleting it. A parcel now moves forward only (transitions, A28)."""
    conn = make_db()
    migrate(conn, template)
    w = build_world(conn, ["owner", staff])
    if template == "marketplace":
        listing = w.su("insert into public.listings (organization_id, title, price_cents) values (%s, 'Mug', 900) "
                       "returning id", (w.org1,))[0][0]
        order = w.su("insert into public.orders (organization_id, listing_id, quantity, unit_price_cents, "
                     "total_cents) values (%s, %s, 1, 900, 900) returning id", (w.org1, listing))[0][0]
    else:
        customer = w.su("insert into public.customers (organization_id) values (%s) returning id", (w.org1,))[0][0]
        order = w.su("insert into public.orders (organization_id, customer_id, order_number, subtotal_cents, "
                     "total_cents) values (%s, %s, 'A-1', 900, 900) returning id", (w.org1, customer))[0][0]
    # a parcel is filed while being prepared (one per order)
    assert w.denied(staff, "insert into public.shipments (organization_id, order_id, status) "
                           "values (%s, %s, 'shipped')", (w.org1, order)) == "42501"
    parcel = w.as_(staff, "insert into public.shipments (organization_id, order_id) values (%s, %s) returning id",
                   (w.org1, order))[0][0]
    status = "update public.shipments set status = %s where id = %s"
    assert w.count(staff, status, ("shipped", parcel)) == 1
    assert w.denied(staff, status, ("preparing", parcel)) == "42501"
    assert w.denied("owner", status, ("preparing", parcel)) == "42501"
    assert w.count(staff, "delete from public.shipments where id = %s", (parcel,)) == 0
    assert w.count(staff, status, ("delivered", parcel)) == 1
    assert w.count(staff, status, ("returned", parcel)) == 1
    # the service role (a carrier's webhook) is not bound
    run_as(w.conn, "service_role", None, status, ("preparing", parcel))
    assert w.count(staff, "delete from public.shipments where id = %s", (parcel,)) == 1


def test_an_asset_in_use_as_a_cover_cannot_be_deleted_by_its_author(make_db):
    """Found by attack: an author deleting their own media asset set a published entry's cover_id to null, an
    entry the author may not edit. A cover is now a restricting reference: unlink it first."""
    conn = make_db()
    migrate(conn, "cms")
    w = build_world(conn, ["owner", "editor", "author"])
    collection = w.su("insert into public.collections (organization_id, name, slug) values (%s, 'Blog', 'blog') "
                      "returning id", (w.org1,))[0][0]
    asset = w.su("insert into public.media_assets (organization_id, created_by, storage_path, mime_type, size_bytes) "
                 "values (%s, %s, 'a/b.png', 'image/png', 10) returning id", (w.org1, w.users["author"]))[0][0]
    entry = w.su("insert into public.entries (organization_id, created_by, collection_id, title, slug, status, "
                 "published_at, cover_id) values (%s, %s, %s, 'Hello', 'hello', 'published', now(), %s) returning id",
                 (w.org1, w.users["editor"], collection, asset))[0][0]
    assert w.denied("author", "delete from public.media_assets where id = %s", (asset,)) == "23503"
    assert w.su("select cover_id from public.entries where id = %s", (entry,)) == [(asset,)]
    w.su("update public.entries set cover_id = null where id = %s", (entry,))
    assert w.count("author", "delete from public.media_assets where id = %s", (asset,)) == 1


def test_a_draft_carries_no_publication_dates_for_an_editor_to_inherit(make_db):
    """Found by attack: an author set published_at = '1999-01-01' (and publish_at) on their own draft, and the
    editor who published it later inherited the dates. Each stage now holds exactly its dates (`requires`)."""
    conn = make_db()
    migrate(conn, "cms")
    w = build_world(conn, ["owner", "editor", "author"])
    collection = w.su("insert into public.collections (organization_id, name, slug) values (%s, 'Blog', 'blog') "
                      "returning id", (w.org1,))[0][0]
    entry = w.as_("author", "insert into public.entries (organization_id, collection_id, title, slug) "
                  "values (%s, %s, 'Draft', 'draft') returning id", (w.org1, collection))[0][0]
    for column in ("published_at", "publish_at"):
        assert w.denied("author", f"update public.entries set {column} = '1999-01-01' where id = %s",
                        (entry,)) == "23514"
        assert w.denied("author", f"insert into public.entries (organization_id, collection_id, title, slug, {column}) "
                        "values (%s, %s, 'Other', 'other', '1999-01-01')", (w.org1, collection)) == "23514"
    assert w.denied("editor", "update public.entries set status = 'published' where id = %s", (entry,)) == "23514"
    assert w.count("editor", "update public.entries set status = 'published', published_at = now() where id = %s",
                   (entry,)) == 1


def test_a_shopper_puts_only_products_they_can_see_in_a_cart(shop):
    """Found by attack: a foreign key checks existence past RLS, so a shopper who knew a draft product's id put
    it in their cart (checkout prices what the cart holds), and a made-up id answered differently from a hidden
    one. A reference a client writes must name a row it may read (docs/access.md A27): both are now the same
    23503, and staff, who read drafts, still add them."""
    w, carts, product, _ = shop
    draft = w.su("insert into public.products (organization_id, name, slug, price_cents) "
                 "values (%s, 'Secret', 'secret', 100) returning id", (w.org1,))[0][0]
    insert = "insert into public.cart_items (organization_id, cart_id, product_id) values (%s, %s, %s)"
    assert w.denied("shopper", insert, (w.org1, carts["open"], draft)) == "23503"
    assert w.denied("shopper", insert, (w.org1, carts["open"], "00000000-0000-4000-8000-000000000000")) == "23503"
    mine = w.su("select id from public.cart_items where cart_id = %s", (carts["open"],))[0][0]
    assert w.denied("shopper", "update public.cart_items set product_id = %s where id = %s", (draft, mine)) == "23503"
    assert w.count("shopper", "update public.cart_items set quantity = 4 where id = %s", (mine,)) == 1
    # an unchanged reference to a row that became hidden stays editable (only what a client sets is checked)
    w.su("update public.products set status = 'discontinued' where id = %s", (product,))
    assert w.count("shopper", "update public.cart_items set quantity = 5 where id = %s", (mine,)) == 1
    assert w.count("fulfilment", insert, (w.org1, carts["abandoned"], draft)) == 1


def test_a_shop_cannot_learn_which_of_its_buyers_reviewed_another_shop(make_db):
    """Found by attack: marketplace reviews are public and carried their author's user id (created_by), so shop A's
    owner joined A's orders (buyer_id, the customer's name) to shop B's public reviews and learned what a named
    customer bought at B. Reviews now keep no author column: the order says whose review it is, and only its shop
    and its buyer read the order. The buyer still writes, reads and archives their own review."""
    conn = make_db()
    migrate(conn, "marketplace")
    w = build_world(conn, ["owner"])
    with conn.cursor() as cur:
        buyer = w.users["buyer"] = create_user(cur, "buyer@example.com", full_name="Buyer")
    orders = {}
    for org in (w.org1, w.org2):
        listing = w.su("insert into public.listings (organization_id, title, price_cents) values (%s, 'Mug', 900) "
                       "returning id", (org,))[0][0]
        orders[org] = w.su("insert into public.orders (organization_id, buyer_id, listing_id, quantity, "
                           "unit_price_cents, total_cents) values (%s, %s, %s, 1, 900, 900) returning id",
                           (org, buyer, listing))[0][0]
    review = w.as_("buyer", "insert into public.reviews (organization_id, order_id, rating, body) "
                            "values (%s, %s, 5, 'Lovely') returning id", (w.org2, orders[w.org2]))[0][0]
    # shop A's owner sees its own buyer, and shop B's review, but nothing in the review names the buyer
    assert w.as_("owner", "select buyer_id from public.orders where id = %s", (orders[w.org1],)) == [(UUID(buyer),)]
    public = w.as_("owner", "select to_jsonb(r) from public.reviews r where r.id = %s", (review,))
    assert public and buyer not in str(public[0][0]), public
    assert buyer not in str(run_as(conn, "anon", None, "select to_jsonb(r) from public.reviews r"))
    # the buyer keeps their review: edits it and archives it, through the order they placed
    assert w.count("buyer", "update public.reviews set body = 'Still lovely' where id = %s", (review,)) == 1
    w.as_("buyer", "delete from public.reviews where id = %s", (review,))
    assert w.su("select archived_at is not null from public.reviews where id = %s", (review,)) == [(True,)]


def test_a_retracted_articles_approved_comments_leave_the_public_with_it(make_db):
    """Found by attack (publishing example): comments were public while approved, whatever became of their article,
    so anon still read the discussion of a retracted one. The public grant now says `visible: article_id`: the
    comments of articles the reader may read. The team still reads them all."""
    conn = make_db()
    migrate(conn, load_blueprint_file(ROOT / "examples" / "publishing.yaml"))
    w = build_world(conn, ["owner", "reviewer"])
    article = w.su("insert into public.articles (organization_id, title, body, status, published_at) "
                   "values (%s, 'Scoop', 'text', 'published', now()) returning id", (w.org1,))[0][0]
    w.su("insert into public.comments (organization_id, article_id, body, approved) "
         "values (%s, %s, 'Well said', true)", (w.org1, article))
    public = "select count(*) from public.comments"
    assert run_as(conn, "anon", None, public) == [(1,)]
    w.su("update public.articles set status = 'retracted' where id = %s", (article,))
    assert run_as(conn, "anon", None, public) == [(0,)]
    assert w.as_("outsider", public) == [(0,)]
    assert w.as_("reviewer", public) == [(1,)]

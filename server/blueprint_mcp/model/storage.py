"""Storage buckets: files kept per organisation, with the same grants as entities.

An object belongs to the organisation named by the first folder of its path
(`<organization_id>/x-rays/1.png`): member grants reach the objects of organisations where the
caller holds a qualifying role, `own` the objects the caller uploaded, `public` everyone (read).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from .access import GrantSpec
from .base import Model
from .errors import ValueProblem as Invalid
from .limits import DESCRIPTION_CHARS

MAX_FILE_BYTES = 5 * 1024**3  # the platform's own upper bound for one object


class BucketAccess(Model):
    """Who may list/download (select), upload (insert), replace (update) and delete objects."""

    select: GrantSpec = Field(None, description="Default: the least role holding read, and above.")
    insert: GrantSpec = Field(None, description="Default: the least role holding write, and above.")
    update: GrantSpec = Field(None, description="Default: the least role holding write, and above.")
    delete: GrantSpec = Field(None, description="Default: the least role holding write, and above.")

    def spec(self, command: str) -> GrantSpec:
        return getattr(self, command)


class Bucket(Model):
    """A storage bucket whose objects live under `<organization_id>/` folders."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
                      description="Bucket id: lower case letters, digits, - and _ (e.g. xrays, clinic-assets).")
    description: str = Field("", max_length=DESCRIPTION_CHARS,
                             description="What the bucket holds; for readers of the blueprint.")
    public: bool = Field(False, description="Serve files by public URL without a token (downloads only; listing "
                                            "still follows access.select, whose grants must then name members). "
                                            "Needs mime_types of inert types only. Leave false for personal data.")
    max_file_bytes: int | None = Field(None, ge=1, le=MAX_FILE_BYTES, description="Largest upload accepted.")
    mime_types: list[str] | None = Field(None, min_length=1, max_length=50,
                                         description="Accepted content types, e.g. [image/png, image/jpeg]; required "
                                                     "on a public bucket, without HTML, SVG, XML or JavaScript.")
    access: BucketAccess = Field(default_factory=BucketAccess)

    @model_validator(mode="after")
    def _public_bucket_is_not_listed(self) -> "Bucket":
        select = self.access.select
        if self.public and isinstance(select, list) and any(g.public for g in select):
            raise Invalid(f"bucket '{self.name}': a public bucket serves every file by URL already; a public select "
                          "grant would also let anyone list its files (the platform's lint "
                          "public_bucket_allows_listing)",
                          "remove the {public: true} select grant (downloads stay public), or set public: false to "
                          "serve files only through the API")
        return self

    @model_validator(mode="after")
    def _mime_types(self) -> "Bucket":
        for m in self.mime_types or []:
            if "/" not in m or len(m) > 255 or any(ch.isspace() for ch in m):
                raise Invalid(f"bucket '{self.name}': '{m[:40]}' is not a content type", "use type/subtype, e.g. image/png")
        if not self.public:
            return self
        # Anyone allowed to upload would publish a page on the project's storage origin (stored XSS): an SVG
        # or HTML file served by public URL runs its scripts in the visitor's browser.
        if self.mime_types is None:
            raise Invalid(f"bucket '{self.name}': a public bucket with no mime_types serves any file by URL, an "
                          "uploaded SVG or HTML page with its scripts included",
                          "list the types it serves, e.g. mime_types: [image/png, image/jpeg, image/webp]")
        active = [m for m in self.mime_types if runs_in_browser(m)]
        if active:
            raise Invalid(f"bucket '{self.name}': a public bucket may not accept {', '.join(active)}: served by URL, "
                          "such a file runs scripts in the visitor's browser",
                          "list inert types only (image/png, image/jpeg, application/pdf...), or set public: false "
                          "to serve files through signed URLs")
        return self


ACTIVE_TYPES = ("text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml", "text/xsl",
                "text/javascript", "application/javascript", "application/ecmascript", "text/ecmascript")


def runs_in_browser(mime: str) -> bool:
    """A content type (or a wildcard covering one) a browser renders as an active document or script (the
    model's bucket check and the audit's BP048 share it: a fact about browsers, not a reading)."""
    kind, _, sub = mime.lower().split(";")[0].strip().partition("/")
    if kind == "*":
        return True
    if sub == "*" or sub.startswith("*"):
        return any(t.startswith(kind + "/") for t in ACTIVE_TYPES)
    # Any XML type is rendered as XML, and XHTML-namespaced scripts in it run (rss+xml, mathml+xml...).
    return f"{kind}/{sub}" in ACTIVE_TYPES or sub.endswith("+xml")

"""The domain error hierarchy: every error names where it happened and how to fix it."""

from __future__ import annotations


class BlueprintError(Exception):
    """Base of every error this package raises on purpose."""

    def __init__(self, message: str, *, field: str | None = None, fix: str | None = None) -> None:
        self.field = field
        self.fix = fix
        parts = [f"{field}: {message}" if field else message]
        if fix:
            parts.append(f"Fix: {fix}")
        super().__init__(" ".join(parts))


class InvalidBlueprint(BlueprintError):
    """The blueprint breaks a rule of the domain (bad name, unknown reference, impossible cycle)."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        # problems: (field path, message, fix)
        self.problems = problems
        lines = [f"{path}: {msg} Fix: {fix}" for path, msg, fix in problems]
        first = problems[0] if problems else ("", "invalid blueprint", "")
        super().__init__("; ".join(lines) if lines else "invalid blueprint", field=first[0])
        self.args = ("; ".join(lines),)

    def __str__(self) -> str:
        return self.args[0]


class TemplateNotFound(BlueprintError):
    """A template name that is not in the library."""


class OutputExists(BlueprintError):
    """A file the user did not ask us to overwrite."""

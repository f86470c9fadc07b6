"""Schema objects the reader makes by the thousands (columns, keys, indexes, policies...), built as validating
them would, without validating again.

Every value the reader passes is one it computed itself, already of its field's type: a name read from the
parse tree, a Location, a tree, a list it has just made. Validating them again was a fiftieth of reading a
long history. The object is what validation makes: every field in declaration order (defaults filled in, a
fresh value from each default factory), the fields passed counted as set. Validation would copy each list
passed, so callers pass lists of their own.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_new, _set = object.__new__, object.__setattr__
_IMMUTABLE = (type(None), str, bool, int, float)


class Maker:
    """`Maker(Column)(name=..., type=...)`: a Column as `Column(name=..., type=...)` makes it."""

    __slots__ = ("cls", "defaults", "factories", "validated")

    def __init__(self, cls: type[BaseModel]) -> None:
        self.cls = cls
        self.defaults: dict[str, Any] = {}
        self.factories: list[tuple[str, Any]] = []
        decorators = cls.__pydantic_decorators__
        if decorators.model_validators or decorators.validators:
            raise TypeError(f"{cls.__name__}: validation would do more than check types")
        # Fields whose validators change what they are given (Table.grants): never made here.
        self.validated = frozenset(f for d in decorators.field_validators.values() for f in d.info.fields)
        for name, info in cls.model_fields.items():
            if info.default_factory is not None:
                self.factories.append((name, info.default_factory))
            elif not info.is_required() and not isinstance(info.default, _IMMUTABLE):
                raise TypeError(f"{cls.__name__}.{name}: validation would copy its default")
            self.defaults[name] = info.default  # a required field's placeholder is always overwritten

    def __call__(self, **given: Any) -> Any:
        if not self.validated.isdisjoint(given):
            return self.cls(**given)
        values = self.defaults.copy()  # declaration order, kept by the update
        values.update(given)
        for name, factory in self.factories:
            if name not in given:
                values[name] = factory()
        obj = _new(self.cls)
        _set(obj, "__dict__", values)
        _set(obj, "__pydantic_fields_set__", set(given))
        _set(obj, "__pydantic_extra__", None)
        _set(obj, "__pydantic_private__", None)
        return obj

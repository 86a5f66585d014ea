"""Type annotations read as config rules: whether a config value fits an annotation
(`matches`), what the annotation asks for in words (`describe`) and in Python
(`render`), the names of its Literals; and `locate`, the object a `_target_` names.
Used by `ganforge.cli.schema`.
"""

from __future__ import annotations

import collections.abc as abc
import difflib
import inspect
import os
import types
import typing
from enum import Enum
from typing import Any, Literal, Mapping, Union

__all__ = ["describe", "did_you_mean", "literal_choices", "locate", "matches", "render"]


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str | None:
    """The choice closest to `word` (difflib), or None when none is close."""
    found = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return found[0] if found else None


def locate(dotted: str) -> Any:
    """The object a `_target_` names (``lightning.pytorch.Trainer``); raises ImportError
    with one line naming the part that is missing."""
    import importlib

    parts = str(dotted).split(".")
    module, error = None, None
    for end in range(len(parts), 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:end]))
            break
        except ModuleNotFoundError as missing:
            error = missing
            if missing.name and not ".".join(parts[:end]).startswith(missing.name):
                raise ImportError(str(missing)) from None  # the module exists but imports something missing
    if module is None:
        raise ImportError(str(error or f"no module {parts[0]}"))
    found = module
    for index in range(end, len(parts)):
        if not hasattr(found, parts[index]):
            owner = ".".join(parts[:index])
            close = did_you_mean(parts[index], [n for n in dir(found) if not n.startswith("_")])
            raise ImportError(f"{owner} has no {parts[index]}" + (f" (did you mean {owner}.{close}?)" if close else ""))
        found = getattr(found, parts[index])
    return found


_UNIONS = (Union, types.UnionType)
_LISTS = (list, tuple, set, frozenset, abc.Sequence, abc.MutableSequence, abc.Iterable, abc.Collection, abc.Set)
_MAPS = (dict, abc.Mapping, abc.MutableMapping)


def _is_node(value: Any) -> bool:
    return isinstance(value, Mapping) and "_target_" in value


def literal_choices(annotation: Any) -> tuple[str, ...]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return tuple(str(a) for a in args if a is not None)
    if origin in _UNIONS:
        return tuple(c for a in args for c in literal_choices(a))
    return ()


def matches(value: Any, annotation: Any) -> bool:
    """Whether a config value (plain Python: a node is a dict with `_target_`) fits `annotation`."""
    if annotation is Any or annotation is object or isinstance(annotation, (str, typing.TypeVar, typing.ForwardRef)):
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in _UNIONS:
        return any(matches(value, a) for a in args)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if _is_node(value):
        return _node_fits(value["_target_"], annotation)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    container = origin or annotation
    if inspect.isclass(container) and issubclass(container, os.PathLike):
        return isinstance(value, (str, os.PathLike))
    if inspect.isclass(container) and issubclass(container, Enum):
        return value in container.__members__ or value in {m.value for m in container}
    if container in _LISTS:
        if not isinstance(value, (list, tuple)):
            return False
        if container is tuple and args and args[-1] is not Ellipsis:
            return len(args) == len(value) and all(matches(v, a) for v, a in zip(value, args))
        return not args or all(matches(v, args[0]) for v in value)
    if container in _MAPS:
        if not isinstance(value, Mapping):
            return False
        return len(args) != 2 or all(matches(k, args[0]) and matches(v, args[1]) for k, v in value.items())
    if container is abc.Callable or container is type:
        return False
    if inspect.isclass(container):
        return isinstance(value, container)
    return True  # a construct this check does not know: let the target decide


def _node_fits(target: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    if not inspect.isclass(origin) or origin in (*_LISTS, *_MAPS, bool, int, float, str):
        return origin is abc.Callable or not inspect.isclass(origin)
    try:
        built = locate(str(target))
    except ImportError:
        return True  # reported where the node itself is checked
    return not inspect.isclass(built) or issubclass(built, origin)


def _noun(annotation: Any, plural: bool = False) -> str:
    names = {bool: ("true or false", "booleans"), int: ("an integer", "integers"), float: ("a number", "numbers"),
             str: ("a string", "strings")}
    if annotation in names:
        return names[annotation][plural]
    return describe(annotation) if not plural else f"{render(annotation)} values"


def describe(annotation: Any) -> str:
    """What a value of `annotation` is, in words: "an integer or null", "one of a, b"."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is None or annotation is type(None):
        return "null"
    if origin in _UNIONS:
        members = [a for a in args if a is not type(None)]
        names = [str(n) for a in members if typing.get_origin(a) is Literal for n in typing.get_args(a) if n is not None]
        if names and bool in members:
            names = ["true", "false", *names]
        parts = [f"one of {', '.join(dict.fromkeys(names))}"] if names else []
        parts += [describe(a) for a in members if typing.get_origin(a) is not Literal and not (names and a is bool)]
        parts = list(dict.fromkeys(parts))
        text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + f" or {parts[-1]}"
        return text + (" or null" if type(None) in args else "")
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if annotation in (bool, int, float, str):
        return _noun(annotation)
    container = origin or annotation
    if inspect.isclass(container) and issubclass(container, os.PathLike):
        return "a path"
    if container in _LISTS:
        return f"a list of {_noun(args[0], plural=True)}" if args and args[-1] is not Ellipsis else "a list"
    if container in _MAPS:
        return "a mapping"
    if inspect.isclass(container):
        return f"a node with _target_ (a {container.__name__})"
    return render(annotation)


def render(annotation: Any) -> str:
    """`annotation` as Python would spell it: ``int | None``."""
    if annotation is None or annotation is type(None):
        return "None"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in _UNIONS:
        return " | ".join(render(a) for a in args)
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join('...' if a is Ellipsis else render(a) for a in args)}]" if args else name
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))

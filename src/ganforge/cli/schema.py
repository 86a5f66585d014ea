"""One validation pass over a composed config: every node with a `_target_` (trainer,
trainer.strategy, trainer.plugins, each logger and callback, data) is checked against the
signature and annotations of what it builds, before anything is built.

For each node: its keys must be parameters of the target (following ``**kwargs`` into the
base classes of ganforge's own classes, and into ``wandb.init`` for W&B's logger), each
value must fit the parameter's annotation (Optional, Union, Literal, list, dict, Path,
int, float, bool, str; a library class takes a node with its own `_target_`, which is
checked in turn), and the values Lightning documents a range for must be in it
(`rules.RULES`). A mistake raises `ConfigError` with one line:

    trainer.max_epochs must be an integer >= -1 or null (Lightning's Trainer(max_epochs: int | None)), got 'abc'

The model node is checked for unknown keys only: the task checks its own values, with the
ranges it knows. Values that cannot be resolved yet (``${hydra:runtime.output_dir}``
before Hydra runs) and ``???`` are skipped.
"""

from __future__ import annotations

import inspect
import os
import typing
from typing import Any, Iterator, Mapping

from omegaconf import DictConfig, ListConfig, OmegaConf

from ganforge.cli.annotations import describe, did_you_mean, literal_choices, locate, matches, render
from ganforge.cli.rules import RULES, Rule
from ganforge.errors import ConfigError

__all__ = ["check_config", "check_node", "did_you_mean", "locate", "owner_name", "parameters", "show"]

HYDRA_KEYS = frozenset({"_target_", "_recursive_", "_convert_", "_partial_", "_args_"})
KEYS_ONLY = ("model",)  # nodes whose values their target checks itself

# Classes whose **kwargs go to a function rather than to a base class.
KWARGS_GO_TO = {
    "lightning.pytorch.loggers.wandb.WandbLogger": "wandb.init",
    "lightning.pytorch.strategies.ddp.DDPStrategy": "torch.nn.parallel.DistributedDataParallel",
}

_UNKNOWN = object()


def check_config(cfg: DictConfig | Mapping[str, Any]) -> None:
    """Check every node with a `_target_` in `cfg` (outside `hydra`); raises ConfigError."""
    for path, node in _target_nodes(cfg, ""):
        check_node(node, path, types=path not in KEYS_ONLY)


def _target_nodes(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    if not isinstance(node, (DictConfig, Mapping)):
        return
    if "_target_" in node:
        yield path, node
        return
    for key in node:
        if path == "" and key == "hydra":
            continue
        child = _get(node, key)
        if isinstance(child, (DictConfig, Mapping)):
            yield from _target_nodes(child, f"{path}.{key}" if path else str(key))


def _get(node: Any, key: Any) -> Any:
    """node[key] with interpolations resolved, or _UNKNOWN when it cannot be resolved yet."""
    try:
        return node[key]
    except Exception:  # an interpolation Hydra fills in later, a ??? value
        return _UNKNOWN


def _plain(value: Any) -> Any:
    if isinstance(value, (DictConfig, ListConfig)):
        try:
            return OmegaConf.to_container(value, resolve=True)
        except Exception:
            return _UNKNOWN
    return value


def _import(path: str, target: str) -> Any:
    try:
        return locate(str(target))
    except ImportError as error:
        raise ConfigError(f"{path}._target_={target} cannot be imported: {error}") from None


def show(value: Any) -> str:
    """A value as the config spells it: true, null, 'abc', [1, 2]."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    return repr(value)


# ---- what a target takes ---------------------------------------------------------------


class Parameter(typing.NamedTuple):
    name: str
    annotation: Any  # a type, or Any when unknown
    owner: str  # where it is declared, e.g. "Lightning's Trainer"


def owner_name(obj: Any) -> str:
    module = getattr(obj, "__module__", "") or ""
    root = module.split(".")[0]
    who = {"lightning": "Lightning's", "torch": "PyTorch's", "ganforge": "ganforge's", "wandb": "W&B's"}.get(root)
    name = getattr(obj, "__qualname__", getattr(obj, "__name__", str(obj)))
    if root == "wandb" and not inspect.isclass(obj):
        name = f"wandb.{name}"
    return f"{who} {name}" if who else f"{module}.{name}"


def _evaluate(annotation: Any, scope: Mapping[str, Any]) -> Any:
    if annotation is inspect.Parameter.empty:
        return Any
    if isinstance(annotation, str):
        try:
            return eval(annotation, dict(scope))  # noqa: S307 - an annotation of an imported class
        except Exception:
            return Any
    return annotation


def _signature_parameters(function: Any, owner: str, scope: Mapping[str, Any]) -> tuple[list[Parameter], bool]:
    """(named parameters, whether it also takes **kwargs)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return [], True
    named, open_ = [], False
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            open_ = True
        elif parameter.kind is not inspect.Parameter.VAR_POSITIONAL and parameter.name != "self":
            named.append(Parameter(parameter.name, _evaluate(parameter.annotation, scope), owner))
    return named, open_


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def parameters(target: Any) -> tuple[dict[str, Parameter], bool]:
    """The keyword parameters `target` (a class or a function) takes, by name, and whether
    it takes others too (a **kwargs that could not be followed)."""
    if not inspect.isclass(target):
        named, open_ = _signature_parameters(target, owner_name(target), getattr(target, "__globals__", {}))
        return {p.name: p for p in named}, open_
    found: dict[str, Parameter] = {}
    classes = [c for c in target.__mro__ if "__init__" in vars(c) and c is not object]
    if not classes or "__signature__" in vars(target):  # e.g. pydantic models: the class's own signature
        named, open_ = _signature_parameters(target, owner_name(target), vars(inspect.getmodule(target) or os))
        return {p.name: p for p in named}, open_
    open_ = True
    for cls in classes:
        init = vars(cls)["__init__"]
        named, open_ = _signature_parameters(init, owner_name(cls), getattr(inspect.unwrap(init), "__globals__", {}))
        for parameter in named:
            found.setdefault(parameter.name, parameter)
        if not open_:
            break
        goes_to = KWARGS_GO_TO.get(_qualified(cls))
        if goes_to is not None:
            function = locate(goes_to)
            named, open_ = _signature_parameters(function, owner_name(function), getattr(function, "__globals__", {}))
            for parameter in named:
                found.setdefault(parameter.name, parameter)
            break
        if not cls.__module__.startswith("ganforge."):
            break  # a library's **kwargs may go anywhere; ganforge's own go to the base class
    return found, open_


def _rules(target: Any) -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    for cls in reversed(getattr(target, "__mro__", ())):
        rules.update(RULES.get(_qualified(cls), {}))
    return rules


# ---- the check ---------------------------------------------------------------------------


def check_node(node: Any, path: str, types: bool = True) -> None:
    """Check one node with a `_target_` (and the nodes inside it); raises ConfigError."""
    target = _import(path, _get(node, "_target_"))
    known, open_ = parameters(target)
    rules = _rules(target)
    for key in node:
        key = str(key)
        if key in HYDRA_KEYS:
            continue
        full = f"{path}.{key}"
        parameter = known.get(key)
        if parameter is None:
            if open_:
                continue
            close = did_you_mean(key, known)
            names = sorted(k for k in known if not k.startswith("_"))
            hint = (f"did you mean {path}.{close}?" if close else
                    f"its parameters: {', '.join(names)}" if len(names) <= 20 else "see its documentation")
            raise ConfigError(f"{full} is not a parameter of {owner_name(target)} ({hint}): remove it or fix its name")
        value = _get(node, key)
        if value is _UNKNOWN:
            continue
        for inner_path, inner in _inner_nodes(value, full):
            check_node(inner, inner_path)
        if types:
            _check_value(full, _plain(value), parameter, rules.get(key))


def _inner_nodes(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, DictConfig) and "_target_" in value:
        yield path, value
    elif isinstance(value, ListConfig):
        for index, item in enumerate(value):
            item = _get(value, index)
            if isinstance(item, DictConfig) and "_target_" in item:
                yield f"{path}[{index}]", item


def _check_value(key: str, value: Any, parameter: Parameter, rule: Rule | None) -> None:
    if value is _UNKNOWN:
        return
    annotation = parameter.annotation
    fits = matches(value, annotation)
    if fits and (rule is None or (value is None and matches(None, annotation)) or rule.ok(value)):
        return
    need = rule.need if rule is not None else describe(annotation)
    if value is not None and rule is not None and matches(None, annotation) and "null" not in need:
        need += " or null"
    rendered = render(annotation)
    signature = f"{parameter.name}: {rendered}" if len(rendered) <= 40 else f"{parameter.name}=..."
    where = f"{parameter.owner}({signature})"
    choices = rule.choices if rule is not None else literal_choices(annotation)
    close = did_you_mean(value, choices) if isinstance(value, str) and choices else None
    hint = f" (did you mean {close}?)" if close and close != value else ""
    raise ConfigError(f"{key} must be {need} ({where}), got {show(value)}{hint}")

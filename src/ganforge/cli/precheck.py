"""The command line checked before Hydra runs, so that a mistake ends in one line and no
run folder: each command's `main()` calls `check_command_line` first.

1. The overrides are parsed with Hydra's own parser (sweeps ``norm=a,b``, ``choice()``,
   ``range()``, packages ``norm@model.norm=...``, ``+``/``++``/``~``).
2. Every value given to a config group (``norm=``, ``hydra/launcher=``, nested ones such
   as ``model/shared``) must be one of that group's configs, each value of a sweep too.
3. The config is composed with Hydra's compose API, from the first value of each sweep.
   A key that is not in the config (``model.lambda_ll=1``) gets one line with the closest
   key; a `_target_` parameter that the yaml leaves out gets the ``+key=`` to add it.
4. `ganforge.cli.schema.check_config` checks every node with a `_target_`: in that config,
   and in one more per further value of each sweep, an axis at a time (``-m a=1,2 b=x,y``:
   also a=2 and b=y; not every combination).
5. The command's own `check(cfg, overrides)` runs last, on the first config (train.py
   builds its model and data there, and checks their sizes).

``HYDRA_FULL_ERROR=1`` shows the traceback instead of the line.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from omegaconf import DictConfig

from ganforge.cli import CONFIG_DIR
from ganforge.cli.errors import report_user_errors
from ganforge.cli.schema import check_config, did_you_mean, locate, owner_name, parameters
from ganforge.errors import ConfigError

__all__ = ["check_command_line", "compose_command_line"]

Check = Callable[[DictConfig, list[str]], None]


def check_command_line(config_name: str, argv: Sequence[str], check: Check | None = None) -> None:
    """Exit with status 2 and one line on stderr when `argv` (a command's arguments) has a
    mistake that can be found before the command runs."""
    with report_user_errors():
        compose_command_line(config_name, argv, check)


def _arguments(argv: Sequence[str]) -> Any | None:
    from hydra._internal.utils import get_args_parser

    try:
        args = get_args_parser().parse_args(list(argv))
    except SystemExit:  # --version, or arguments Hydra will refuse itself
        return None
    if args.help or args.hydra_help or args.info or args.shell_completion or args.experimental_rerun:
        return None
    if args.config_path or args.config_dir:  # another search path: Hydra's own checks apply
        return None
    return args


def compose_command_line(config_name: str, argv: Sequence[str], check: Check | None = None) -> DictConfig | None:
    """The config `argv` gives (Hydra's node included, the first value of every sweep),
    checked; None when the arguments are not a run (--help, --info, ...). Raises ConfigError."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    args = _arguments(argv)
    if args is None:
        return None
    config_name = args.config_name or config_name
    if GlobalHydra.instance().is_initialized():  # called from inside a Hydra app
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        parser = OverridesParser.create(config_loader=loader)
        overrides = []
        for text in args.overrides:
            try:
                overrides.extend(parser.parse_overrides([text]))
            except OverrideParseException as error:
                lines = [line.strip() for line in str(error).splitlines() if line.strip()]
                reason = next((line for line in lines if not line.startswith(("Error parsing", "See "))), "")
                raise ConfigError(f"cannot parse {text}" + (f" ({reason})" if reason else "") + ": quote the value or see "
                                  "https://hydra.cc/docs/advanced/override_grammar/basic/") from None
        groups = [o for o in overrides if _is_group(loader, o)]
        for override in groups:
            _check_group_values(loader, override)
        first = [line for line in (_first_value(o) for o in overrides) if line is not None]
        config_overrides = [o for o in overrides if o not in groups]
        cfg = _compose(compose, loader, config_name, first, config_overrides)
        check_config(cfg)
        for lines in _other_sweep_values(overrides):
            check_config(_compose(compose, loader, config_name, lines, config_overrides))
        if check is not None:
            check(cfg, first)
    return cfg


# ---- config groups -----------------------------------------------------------------------


def _is_group(loader: Any, override: Any) -> bool:
    """Whether Hydra treats the override as a group choice (as its defaults list does)."""
    return loader.repository.group_exists(override.key_or_group) and not isinstance(override.value(), dict)


def _values(override: Any) -> list[Any]:
    """Every value an override gives (each of a sweep's), or [] when Hydra picks them (glob)."""
    from hydra.core.override_parser.types import ValueType

    if override.is_delete():
        return []
    if override.value_type == ValueType.GLOB_CHOICE_SWEEP:
        return []
    if override.is_sweep_override():
        if override.is_discrete_sweep():
            return list(override.sweep_string_iterator())
        return []
    value = override.value()
    return list(value) if isinstance(value, list) else [value]


def _check_group_values(loader: Any, override: Any) -> None:
    group = override.key_or_group
    options = sorted(loader.get_group_options(group))
    for value in _values(override):
        if value is None or str(value) == "null" or str(value) in options:
            continue
        if "/" in str(value) and loader.repository.config_exists(f"{group}/{value}"):
            continue
        close = did_you_mean(str(value), options)
        hint = f" (did you mean {close}?)" if close else ""
        raise ConfigError(f"{group}={value} is not an option; choose one of {', '.join(options)}{hint}")


def _first_value(override: Any) -> str | None:
    """The override with a sweep replaced by its first value; None for a glob, whose
    values Hydra chooses."""
    if not override.is_sweep_override():
        return override.input_line
    if override.is_discrete_sweep():
        first = next(iter(override.sweep_string_iterator()), None)
    elif override.is_interval_sweep():
        first = override.value().start
    else:
        return None
    return None if first is None else f"{override.get_key_element()}={first}"


def _other_sweep_values(overrides: list) -> list[list[str]]:
    """The command lines that give each value of a sweep beyond its first, one axis at a
    time (the other sweeps at their first values): `-m a=1,2,3 b=x,y` adds a=2, a=3 and
    b=y, not the 6 combinations, so a wrong value anywhere in a sweep is found at once."""
    lines = [_first_value(o) for o in overrides]
    variants = []
    for index, override in enumerate(overrides):
        if lines[index] is None or not override.is_sweep_override() or not override.is_discrete_sweep():
            continue
        for value in list(override.sweep_string_iterator())[1:]:
            variant = list(lines)
            variant[index] = f"{override.get_key_element()}={value}"
            variants.append([line for line in variant if line is not None])
    return variants


# ---- keys --------------------------------------------------------------------------------


def _compose(compose: Callable, loader: Any, config_name: str, first: list[str], config_overrides: list) -> DictConfig:
    from hydra.errors import HydraException, MissingConfigException

    try:
        return compose(config_name=config_name, overrides=first, return_hydra_config=True)
    except MissingConfigException as error:  # a group choice inside a config file
        options = sorted(error.options or [])
        text = str(error).strip().splitlines()[0]
        missing = (error.missing_cfg_file or "").rsplit("/", 1)[-1]
        close = did_you_mean(missing, options) if missing else None
        choose = f"; choose one of {', '.join(options)}" if options else ""
        raise ConfigError(f"{text}{choose}" + (f" (did you mean {close}?)" if close else "")) from None
    except (HydraException, Exception) as error:
        if isinstance(error, ConfigError):
            raise
        groups_only = [line for line in first if line not in {o.input_line for o in config_overrides}]
        try:
            base = compose(config_name=config_name, overrides=groups_only, return_hydra_config=True)
        except Exception:
            base = None
        if base is not None:
            for override in config_overrides:
                _check_key(loader, base, override)
        raise ConfigError(_first_lines(error)) from None


def _first_lines(error: BaseException) -> str:
    """Hydra's message and its cause's, one line."""
    parts = []
    while error is not None and len(parts) < 2:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        if lines:
            parts.append(lines[0].rstrip("."))
        error = error.__cause__
    return ": ".join(dict.fromkeys(parts)) or "the config could not be composed"


def _check_key(loader: Any, base: DictConfig, override: Any) -> None:
    """One line when `override` names a key that `base` (the config the group choices
    make) lacks, or adds (+) one that it has."""
    from hydra.core.object_type import ObjectType

    if override.is_force_add():
        return
    parts = override.key_or_group.split(".")
    node: Any = base
    for index, part in enumerate(parts):
        if not isinstance(node, DictConfig) or node._is_none() or node._is_missing():
            return  # inside a list or an unset node: Hydra's own message
        if part in node.keys():  # (`in node` is False for a ??? value)
            node = node._get_node(part)
            continue
        if index == len(parts) - 1 and override.is_add():
            return
        prefix = ".".join(parts[:index])
        full = f"{prefix}.{part}" if prefix else part
        value = "" if override.is_delete() else "=" + str(override.input_line).split("=", 1)[1]
        target = _target_of(node)
        if target is not None and part in parameters(target)[0]:
            raise ConfigError(f"{full} is not set in the config, but {owner_name(target)} takes it: add it with "
                              f"+{full}{value or '=...'}")
        candidates = [str(k) for k in node if not str(k).startswith("_")]
        if index == 0:
            candidates += loader.get_group_options("", results_filter=ObjectType.GROUP)
        if target is not None:
            candidates += list(parameters(target)[0])
        close = did_you_mean(part, candidates)
        where = f"{prefix}" if prefix else "the config"
        if close:
            hint = f" (did you mean {prefix + '.' if prefix else ''}{close}?)"
        else:
            hint = f"; {where} has {', '.join(sorted(set(candidates))[:30])}" if candidates else ""
        raise ConfigError(f"{full} is not in the config{hint}")
    if override.is_add():
        raise ConfigError(f"{override.key_or_group} is in the config already: set it without the + "
                          f"({str(override.input_line).lstrip('+')})")


def _target_of(node: Any) -> Any | None:
    if not isinstance(node, DictConfig) or "_target_" not in node:
        return None
    try:
        return locate(str(node["_target_"]))
    except Exception:
        return None


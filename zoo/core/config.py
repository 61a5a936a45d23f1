"""Config dataclasses: the one home of every default, its help text and its check.

A model's config (and the recipe's run settings) is a dataclass whose fields are declared with
``setting(default, help, check=...)``. From that one declaration come

- the recipe's command-line flags (``--latent-dim``: type, default, help, validation), so a
  flag default can never drift from the config default;
- validation of every value, whether it came from a flag or from Python: a bad value raises
  ``ConfigError`` with one line naming the field (or flag) and the value;
- the card's ``config`` section (``to_dict``).

As in diffusers' ``register_to_config``: the constructor's signature is the single source of
defaults; nothing repeats them.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import numbers

from zoo.core.errors import ZooError


class ConfigError(ZooError):
    """A bad setting: names the field, the value and what it must be."""

    def __init__(self, field, value, requirement, say_value=True):
        # say_value False: the value is not what is wrong (a flag that cannot go with another)
        self.field, self.value, self.requirement, self.say_value = field, value, requirement, say_value
        super().__init__(self._message(field))

    def _message(self, name):
        return f"{name} {self.requirement}" + (f", got {self.value!r}" if self.say_value else "")

    def for_flag(self):
        """The same message with the command-line spelling of the field."""
        return self._message(flag_name(self.field))


def flag_name(field):
    return "--" + field.replace("_", "-")


# Checks -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Check:
    """``requirement`` completes "<field> ..." (e.g. "must be a positive integer")."""

    requirement: str
    ok: object  # value -> bool
    choices: tuple = ()  # for one_of: argparse lists them and refuses others itself
    empty_ok: bool = False  # for each(..., empty_ok=True): the flag may be given without values

    def __call__(self, field, value):
        try:
            good = self.ok(value)
        except TypeError:
            good = False
        if not good:
            raise ConfigError(field, value, self.requirement)


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


positive_int = Check("must be a positive integer", lambda v: _is_int(v) and v >= 1)
non_negative_int = Check("must be an integer >= 0", lambda v: _is_int(v) and v >= 0)
positive = Check("must be a positive number", lambda v: _is_number(v) and v > 0)
non_negative = Check("must be a number >= 0", lambda v: _is_number(v) and v >= 0)
any_int = Check("must be an integer", _is_int)


def in_range(low, high, *, high_open=False, low_open=False):
    left, right = "(" if low_open else "[", ")" if high_open else "]"

    def ok(v):
        return (_is_number(v) and (v > low if low_open else v >= low)
                and (v < high if high_open else v <= high))

    return Check(f"must be in {left}{low}, {high}{right}", ok)


def one_of(*choices):
    return Check("must be one of " + ", ".join(map(str, choices)), lambda v: v in choices, choices)


def each(check, empty_ok=False):
    """``check`` on every element of a tuple, non-empty unless ``empty_ok``."""
    which = "a list (possibly empty)" if empty_ok else "a non-empty list"
    return Check(f"must be {which} whose every value {check.requirement.removeprefix('must ')}",
                 lambda v: isinstance(v, tuple) and (empty_ok or len(v) > 0) and all(check.ok(x) for x in v),
                 empty_ok=empty_ok)


# Fields -------------------------------------------------------------------------------------
def setting(default, help, check=None, *, type=None, flag=True, from_data=False, const=None):
    """A config field. ``type``: the element type when ``default`` does not show it (None
    defaults); ``flag=False``: not on the command line; ``from_data``: filled from the
    dataset (image shape, class count), never a flag; ``const``: the value of the flag given
    without one."""
    return dataclasses.field(default=default, metadata={
        "help": help, "check": check, "type": type, "flag": flag and not from_data, "from_data": from_data,
        "const": const})


def field_type(f):
    """The Python type of a field's values (of its elements, for tuples)."""
    explicit = f.metadata.get("type")
    if explicit is not None:
        return explicit
    value = f.default
    if isinstance(value, tuple):
        return type(value[0]) if value else str
    return type(value)


@dataclasses.dataclass
class Config:
    """Base of every config dataclass: coerces lists to tuples and ints to floats where the
    field is a float, runs each field's check, then ``validate()`` for rules that span fields."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                value = tuple(value)
            kind = field_type(f)
            if kind is float and _is_int(value):
                value = float(value)
            if isinstance(value, tuple) and kind is float:
                value = tuple(float(x) if _is_int(x) else x for x in value)
            setattr(self, f.name, value)
            check = f.metadata.get("check")
            if check is not None and value is not None:
                check(f.name, value)
        self.validate()

    def validate(self):
        """Rules that involve several fields; raise ``ConfigError``."""

    def to_dict(self):
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ZooError(f"{cls.__name__} has no field(s) {', '.join(unknown)}; its fields are {', '.join(sorted(names))}")
        return cls(**values)

    @classmethod
    def defaults(cls):
        return {f.name: f.default for f in dataclasses.fields(cls)}

    @classmethod
    def flag_fields(cls):
        return [f for f in dataclasses.fields(cls) if f.metadata.get("flag", False)]

    @classmethod
    def data_fields(cls):
        return [f.name for f in dataclasses.fields(cls) if f.metadata.get("from_data", False)]


# Flags --------------------------------------------------------------------------------------
class FlagParser(argparse.ArgumentParser):
    """argparse, but a bad command line gets one line — "vae.py: error: argument --epochs: must
    be a positive integer, got 0 (see vae.py --help)" — and status 2, without the usage block
    argparse prints first (17 lines for the VAE recipe, 27 for diffusion, burying the one that
    says what is wrong). Sub-commands' parsers are FlagParsers too (argparse makes them of the
    parent's class)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Each flag's help followed by its default, unless the help already names it or there is
    none ("(default: the whole training split) (default: None)" said it twice)."""

    def _get_help_string(self, action):
        if action.default is None or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _argparse_type(f):
    """An argparse ``type=`` that converts the text and runs the field's check, so a bad
    value is reported by argparse as "argument --flag: ..." in one line."""
    kind, check = field_type(f), f.metadata.get("check")

    def convert(text):
        if text.lower() == "none" and f.default is None:
            return None
        try:
            value = _parse_bool(text) if kind is bool else kind(text)
        except ValueError:
            what = {int: "an integer", float: "a number", bool: "true or false"}.get(kind, kind.__name__)
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if check is not None and not check.choices and not isinstance(f.default, tuple):
            try:
                check(f.name, value)
            except ConfigError as e:
                raise argparse.ArgumentTypeError(f"{e.requirement}, got {text}") from None
        return value

    convert.__name__ = kind.__name__
    return convert


def _parse_bool(text):
    words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    if text.lower() not in words:
        raise ValueError(text)
    return words[text.lower()]


def add_flags(parser, config_class, defaults=None, group=None):
    """Add a flag for every flag field of ``config_class`` to ``parser``; ``defaults``
    (a preset, the model's run defaults) replaces the dataclass defaults. Returns the
    added field names."""
    defaults = {**config_class.defaults(), **(defaults or {})}
    target = group or parser
    names = []
    for f in config_class.flag_fields():
        default = defaults[f.name]
        # argparse %-formats help text: a literal % ("±10%") must be doubled
        kwargs = {"default": default, "help": f.metadata["help"].replace("%", "%%"), "dest": f.name}
        if field_type(f) is bool and not isinstance(f.default, tuple):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _argparse_type(f)
            if isinstance(f.default, tuple):
                check = f.metadata.get("check")
                kwargs["nargs"] = "*" if check is not None and check.empty_ok else "+"
            elif f.metadata.get("const") is not None:
                kwargs["nargs"], kwargs["const"] = "?", f.metadata["const"]
            check = f.metadata.get("check")
            if check is not None and check.choices:
                kwargs["choices"] = check.choices
            else:
                kwargs["metavar"] = f.name.upper()
        target.add_argument(flag_name(f.name), **kwargs)
        names.append(f.name)
    return names


def build(config_class, args, names, **extra):
    """``config_class`` from the parsed flags ``names`` plus ``extra`` (data-derived fields);
    a ConfigError is re-worded with the flag name when the bad field was a flag."""
    values = {n: getattr(args, n) for n in names}
    try:
        return config_class(**values, **extra)
    except ConfigError as e:
        if e.field in names:
            raise ConfigError(flag_name(e.field), e.value, e.requirement) from None
        raise

"""Options, each declared once.

An option is a dataclass field declared with ``option(default, help, …)``: its type is the
field's annotation, and its ``Spec`` (the field's metadata) holds its bounds, its choices and
its help. Everything that takes options reads that one declaration:

* ``build``: the dataclass from Python keywords, each value checked (``check``), unknown
  names refused — ``rnnkit.train(…, hidden=2.5)`` gets one ``RnnkitError`` naming the flag
  and the keyword;
* ``check_fields``: a config checks itself when it is made (in Python, or from config.json);
* ``from_json``: a config read from disk, with what is wrong named as the file's setting;
* ``add_flags``: the command line's flags, their help and their argparse types;
* ``table``: the options' table in the docs' reference.

A flag parsed on the command line meets the very check a keyword meets (``parse_flag``), so
the two refuse the same values with the same words.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import json
import math
import numbers
import re
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, field, fields
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from rnnkit.errors import RnnkitError

Choices = tuple[Any, ...] | Callable[[], Iterable[Any]]


@dataclass(frozen=True)
class Spec:
    """What a field's declaration says beside its type and default."""

    help: str = ""
    bounds: str | None = None  # an interval: "[1, )", "(0, 1]", "[0, 4294967295]"
    choices: Choices | None = None  # a tuple, or a function giving them (what a registry holds now)
    shown: str | None = None  # the default as the help and the docs say it (where the value alone would not)
    flag: str | None = None  # default: --name-with-dashes
    metavar: str | None = None
    cli: bool = True  # False: a value the run fits or derives (kept in config.json), never given
    resume: bool = True  # a run resumes only with the same value (the trainer's options say which may change)


def option(default: Any = MISSING, help: str = "", **spec: Any) -> Any:
    """A dataclass field that is an option: its default, then what ``Spec`` holds."""
    return field(default=default, metadata={"option": Spec(help, **spec)})


@dataclass(frozen=True)
class Declared:
    """One option of a dataclass: its name, type, default and spec."""

    name: str
    hint: Any
    default: Any
    spec: Spec

    @property
    def flag(self) -> str:
        return self.spec.flag or "--" + self.name.replace("_", "-")

    @property
    def choices(self) -> tuple[Any, ...] | None:
        c = self.spec.choices
        return None if c is None else tuple(c() if callable(c) else c)

    @property
    def optional(self) -> bool:
        return _allows_none(self.hint)

    @property
    def base(self) -> Any:
        """The type without None: int, float, str, bool, or tuple/list of int."""
        return _without_none(self.hint)


@functools.cache
def declared(cls: type) -> tuple[Declared, ...]:
    """Every option ``cls`` declares (its own and its bases'), in field order."""
    hints = get_type_hints(cls)
    return tuple(Declared(f.name, hints[f.name], f.default, f.metadata["option"]) for f in fields(cls)
                 if "option" in f.metadata)


def declared_by_name(cls: type) -> dict[str, Declared]:
    return {d.name: d for d in declared(cls)}


def flag_names(cls: type) -> tuple[str, ...]:
    """The options of ``cls`` a user gives (its flags): those it does not fit or derive itself."""
    return tuple(d.name for d in declared(cls) if d.spec.cli)


# ------------------------------------------------------------------------------ values

def _allows_none(hint: Any) -> bool:
    return hint is type(None) or (get_origin(hint) in (Union, UnionType) and type(None) in get_args(hint))


def _without_none(hint: Any) -> Any:
    if get_origin(hint) in (Union, UnionType):
        rest = [a for a in get_args(hint) if a is not type(None)]
        return rest[0] if len(rest) == 1 else Union[tuple(rest)]
    return hint


def _is_list(hint: Any) -> bool:
    return get_origin(hint) in (tuple, list)


def interval(bounds: str) -> tuple[float | None, bool, float | None, bool]:
    """``"[1, )"`` → (low, low included, high, high included); None where the side is open-ended."""
    low, high = (float(x) if x.strip() else None for x in bounds[1:-1].split(","))
    return low, bounds[0] == "[", high, bounds[-1] == "]"


def describe(d: Declared, none: str = "None") -> str:
    """What a value of option ``d`` must be, in words: "a whole number in [1, )"."""
    base = d.base
    if d.choices is not None:
        what = "one of " + ", ".join(map(str, d.choices))
    elif base is bool:
        what = "true or false" if none == "null" else "True or False"
    elif base is int:
        what = "a whole number"
    elif base is float:
        what = "a finite number"
    elif _is_list(base):
        what = "a list of whole numbers"
    elif base is str:
        what = "a string"
    else:
        what = str(base)
    if d.spec.bounds:
        what += f"{', each' if _is_list(base) else ''} in {d.spec.bounds}"
    return what + (f", or {none}" if d.optional else "")


def _in_bounds(value: float, bounds: str | None) -> bool:
    if bounds is None:
        return True
    low, low_in, high, high_in = interval(bounds)
    return not ((low is not None and (value < low or (value == low and not low_in)))
                or (high is not None and (value > high or (value == high and not high_in))))


def _scalar_fits(value: Any, base: Any, bounds: str | None) -> bool:
    if base is bool:
        return isinstance(value, bool)
    if base is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool) and _in_bounds(value, bounds)
    if base is float:
        return (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
                and _in_bounds(value, bounds))
    if base is str:
        return isinstance(value, str)
    return True


def fits(d: Declared, value: Any) -> bool:
    """Whether ``value`` is one that option ``d`` takes: its type (a bool is not a number, a
    string not a number), finite, within its bounds, one of its choices."""
    if value is None:
        return d.optional
    base = d.base
    if _is_list(base):
        return isinstance(value, (list, tuple)) and all(_scalar_fits(v, get_args(base)[0], d.spec.bounds)
                                                       for v in value)
    if not _scalar_fits(value, base, d.spec.bounds):
        return False
    return d.choices is None or value in d.choices


def shown(value: Any) -> str:
    """A value as a message quotes it, short."""
    try:
        text = repr(value) if isinstance(value, float) else json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return _short(text)


def _short(text: str) -> str:
    """One line of at most 40 characters (a message is one line, whatever the value's repr)."""
    text = " ".join(text.split())
    return text if len(text) <= 40 else text[:37] + "..."


def _beyond(d: Declared, value: Any) -> str | None:
    """"too small" or "too large" where ``value`` is of the right type but beyond a bound; else None."""
    values = value if isinstance(value, (list, tuple)) else [value]
    kind = get_args(d.base)[0] if _is_list(d.base) else d.base
    if d.spec.bounds is None or not values or not all(_scalar_fits(v, kind, None) for v in values):
        return None
    low, low_in, high, high_in = interval(d.spec.bounds)
    small = any(low is not None and (v < low or (v == low and not low_in)) for v in values)
    return "too small" if small else "too large"


def problem(d: Declared, value: Any, text: str | None = None) -> str:
    """What is wrong with ``value`` for option ``d`` (``text``: the value as it was typed)."""
    text = text or shown_python(value)
    beyond = _beyond(d, value)
    return f"{text} is {beyond}; give {describe(d)}" if beyond else f"{text} is not {describe(d)}"


def refusal(d: Declared, value: Any) -> str:
    """The one sentence that refuses ``value`` for option ``d``, naming its flag and its keyword."""
    named = f"{d.flag} ({d.name}=)" if d.spec.cli else f"{d.name}="
    return f"{named}: {problem(d, value)}"


def check(d: Declared, value: Any) -> Any:
    """``value`` if option ``d`` takes it (a tuple for a list), else one ``RnnkitError``."""
    if not fits(d, value):
        raise RnnkitError(refusal(d, value))
    return tuple(value) if isinstance(value, list) and get_origin(d.base) is tuple else value


def build(cls: type, values: dict[str, Any], what: str) -> Any:
    """``cls(**values)`` with every value checked against its declaration; a name ``cls`` does
    not declare is refused with the names it does (``what``: "a language model's training")."""
    known = declared_by_name(cls)
    unknown = sorted(set(values) - set(known))
    if unknown:
        near = difflib.get_close_matches(unknown[0], list(known), n=1)
        hint = f"did you mean {near[0]}=? " if near else ""
        raise RnnkitError(f"{what} has no option {', '.join(map(repr, unknown))}; {hint}its options are "
                          f"{', '.join(known)}")
    return cls(**{name: check(known[name], value) for name, value in values.items()})


def check_fields(obj: Any) -> None:
    """Every option of the dataclass instance ``obj`` holds a value its declaration takes."""
    for d in declared(type(obj)):
        check(d, getattr(obj, d.name))


def from_json(cls: type, data: Any, what: str) -> Any:
    """A config of ``cls`` from its JSON object (config.json's ``model``): a setting it does not
    know, one it needs, or a value its declaration refuses is one error naming it (``what``:
    "the ranker model's config")."""
    if not isinstance(data, dict):
        raise RnnkitError(f"{what} is not a JSON object")
    known = declared_by_name(cls)
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise RnnkitError(f"{what} has settings this rnnkit does not know: {', '.join(unknown)}")
    for name, value in data.items():
        if name in known and not fits(known[name], value):
            raise RnnkitError(f"{what} has {name} = {shown(value)}, which is not {describe(known[name], 'null')}; "
                              "the file was damaged or edited by hand")
    try:
        return cls(**data)
    except TypeError as e:
        raise RnnkitError(f"{what} is incomplete ({e})") from None


# ------------------------------------------------------------------------------ a method's arguments

def argument(name: str, value: Any, hint: Any, bounds: str | None = None) -> Any:
    """``value`` checked as an option of type ``hint`` within ``bounds`` would be (a method's
    argument that no flag gives: ``top=``, ``beam=``), or one ``RnnkitError`` naming ``name=``."""
    return check(Declared(name, hint, MISSING, Spec(bounds=bounds, cli=False)), value)


def text_argument(name: str, value: Any) -> str:
    """One text: a ``str`` with something in it."""
    if not isinstance(value, str):
        raise RnnkitError(f"{name}= must be a text (a str); got {shown_python(value)}")
    if not value.strip():
        raise RnnkitError(f"{name}= is empty; give it some text")
    return value


def texts_argument(name: str, value: Any, least: int = 1, noun: str = "texts") -> list[str]:
    """A list of texts, at least ``least`` of them (``noun``: what they are, in the message):
    never one ``str``, which Python would read as a list of its characters."""
    if isinstance(value, (str, bytes)):
        raise RnnkitError(f"{name}= must be a list of texts, not one text: give [{shown_python(value)}]")
    if not isinstance(value, Iterable):
        raise RnnkitError(f"{name}= must be a list of texts (str); got {shown_python(value)}")
    texts = list(value)
    wrong = [t for t in texts if not isinstance(t, str)]
    if wrong:
        raise RnnkitError(f"{name}= must hold texts (str) only; it holds {shown_python(wrong[0])}")
    if not texts:
        raise RnnkitError(f"{name}= is empty; give at least {'one text' if least == 1 else f'{least} {noun}'}")
    if len(texts) < least:
        raise RnnkitError(f"give at least {least} {noun} ({name}= holds {len(texts)})")
    return texts


def shown_python(value: Any) -> str:
    """A Python value as a message quotes it: its repr, short."""
    return _short(repr(value))


# ------------------------------------------------------------------------------ the command line

def shown_default(d: Declared) -> str:
    """The default as ``--help`` and the docs say it."""
    if d.spec.shown is not None:
        return d.spec.shown
    value = d.default
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None or value is MISSING:
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_flag(d: Declared) -> Callable[[str], Any]:
    """The argparse ``type`` of option ``d``'s flag: the text parsed, then checked as a keyword is."""
    base = d.base

    def parse(text: str) -> Any:
        try:
            if _is_list(base):
                value = [int(part) for part in text.split(",")]
            else:
                value = int(text) if base is int else float(text) if base is float else text
        except ValueError:
            if _is_list(base):
                raise argparse.ArgumentTypeError(f"expected ids separated by commas, such as 2000,6000 "
                                                 f"(got {text!r})") from None
            raise argparse.ArgumentTypeError(problem(d, text, repr(text))) from None
        if not fits(d, value):
            raise argparse.ArgumentTypeError(problem(d, value, text))
        return value

    parse.__name__ = getattr(base, "__name__", "value")  # argparse names the type in its messages
    return parse


def add_flags(parser: argparse.ArgumentParser, cls: type, *, word: str = "default",
              skip: Iterable[str] = ()) -> None:
    """A flag for each option ``cls`` declares for the command line (but ``skip``). A flag left
    out sets nothing, so the dataclass's default (or what the run decides) applies; its help
    shows that default."""
    for d in declared(cls):
        if not d.spec.cli or d.name in skip:
            continue
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "dest": d.name,
                                  "help": literal_help(f"{d.spec.help} ({word}: {shown_default(d)})".strip())}
        if d.base is not bool:  # the flag's own name, not the field's (--deadline, not DEADLINE_S)
            kwargs["metavar"] = d.spec.metavar or d.flag.lstrip("-").replace("-", "_").upper()
        if d.base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif d.choices is not None and d.base is str:
            kwargs["choices"] = list(d.choices)
        else:
            kwargs["type"] = parse_flag(d)
        parser.add_argument(d.flag, **kwargs)


def literal_help(text: str) -> str:
    """A help text as argparse prints it: a lone ``%`` doubled (argparse expands ``%(…)s`` fields);
    a doubled one is left as it is."""
    return re.sub(r"(?<!%)%(?![%(])", "%%", text)


def given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of ``cls`` given on the command line (those left out are not set)."""
    return {d.name: getattr(args, d.name) for d in declared(cls) if hasattr(args, d.name)}


# ------------------------------------------------------------------------------ the docs

def table(cls: type, word: str = "default") -> str:
    """A Markdown table of the options ``cls`` declares for the command line."""
    rows = ["| flag | Python | takes | " + word + " | what it does |", "|---|---|---|---|---|"]
    for d in declared(cls):
        if d.spec.cli:
            cells = (f"`{d.flag}`", f"`{d.name}=`", describe(d), shown_default(d), d.spec.help)
            rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)


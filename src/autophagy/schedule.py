"""Per-generation sample sizes: ``loop.n_real`` / ``loop.n_synthetic`` as a schedule over generations.

A schedule is one of

* a whole number: the same size at every generation;
* a list: entry g is generation g's size (g = 0..G, so at least G + 1 entries; extra entries are
  unused). For ``n_real``, entry 0 is generation 0's real set (the default ``n_initial``); for
  ``n_synthetic`` entry 0 is never used (generation 0 trains on real data only) -- write 0 there;
* a formula over ``g``, e.g. ``"100 * (g + 1)**2"`` (Fu et al. 2024's super-quadratic growth),
  parsed with ``ast`` and evaluated by a whitelist walker, never ``eval``: numbers, ``g``,
  ``+ - * / // % **``, unary minus and the functions ``min max abs round floor ceil int sqrt log exp``.

Every value must be a non-negative whole number (a formula that yields 337.5 is refused: wrap it in
``floor``, ``ceil`` or ``round``). Values are checked for g = 0..G when the config is validated,
so a bad schedule is a one-line ``ConfigError`` before the run, never a failure at generation g.
"""
from __future__ import annotations

import ast
import math
import operator
from functools import lru_cache
from typing import Any, Union

from .errors import ConfigError

Raw = Union[int, tuple, str]
MAX_SIZE = 10 ** 12  # no schedule asks for more points than this (also stops 10**10**10 from hanging)
FUNCTIONS = {"min": min, "max": max, "abs": abs, "round": round, "floor": math.floor, "ceil": math.ceil,
             "int": int, "sqrt": math.sqrt, "log": math.log, "exp": math.exp}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_VALID = ("a whole number >= 0, a list of them (entry g for generation g), or a formula over g such as "
          "'100 * (g + 1)**2' (numbers, g, + - * / // % **, " + " ".join(FUNCTIONS) + ")")


def normalise(field: str, value: Any) -> Raw:
    """Check the form of a raw schedule and return it canonically (int, tuple of ints or formula str)."""
    if isinstance(value, bool):
        raise ConfigError(field, value, _VALID)
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(field, value, _VALID)
        return int(value)
    if isinstance(value, (list, tuple)):
        if not value:
            raise ConfigError(field, "[]", _VALID)
        for g, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"{field}[{g}]", v, "a whole number >= 0 (the size at generation g)")
        return tuple(int(v) for v in value)
    if isinstance(value, str):
        _tree(field, value.strip())
        return value.strip()
    raise ConfigError(field, value, _VALID)


@lru_cache(maxsize=256)
def _tree(field: str, text: str) -> ast.AST:
    """The checked syntax tree of a formula (only whitelisted nodes)."""
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        raise ConfigError(field, text, _VALID, problem=f"not a formula; expected {_VALID}") from None
    for node in ast.walk(tree):
        ok = (isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Load)) or type(node) in _BINARY or type(node) in _UNARY
              or (isinstance(node, ast.Constant) and type(node.value) in (int, float))
              or (isinstance(node, ast.Name) and (node.id == "g" or node.id in FUNCTIONS))
              or (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS
                  and not node.keywords))
        if not ok:
            what = getattr(getattr(node, "func", node), "id", None) or type(node).__name__
            raise ConfigError(field, text, _VALID, problem=f"{what!r} is not allowed; expected {_VALID}")
    return tree


def _eval(node: ast.AST, g: int, field: str, text: str):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id != "g":
            raise ConfigError(field, text, _VALID, problem=f"function {node.id!r} used without a call; expected {_VALID}")
        return g
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, g, field, text))
    if isinstance(node, ast.Call):
        args = [_eval(a, g, field, text) for a in node.args]
        try:
            return FUNCTIONS[node.func.id](*args)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ConfigError(field, text, _VALID, problem=f"{node.func.id}() failed at g = {g} ({exc})") from None
    left, right = _eval(node.left, g, field, text), _eval(node.right, g, field, text)
    if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > MAX_SIZE):
        raise ConfigError(field, text, "", problem=f"too large at g = {g}; expected sizes of at most {MAX_SIZE} points")
    try:
        value = _BINARY[type(node.op)](left, right)
    except (ZeroDivisionError, OverflowError) as exc:
        raise ConfigError(field, text, _VALID, problem=f"{exc} at g = {g}") from None
    if isinstance(value, complex) or abs(value) > MAX_SIZE:
        raise ConfigError(field, text, "", problem=f"out of range at g = {g}; expected real sizes of at most {MAX_SIZE}")
    return value


def at(field: str, raw: Raw, g: int) -> int:
    """The size at generation ``g`` (a non-negative int) or a one-line ``ConfigError`` naming ``field``."""
    if isinstance(raw, int):
        return raw
    if isinstance(raw, tuple):
        if g >= len(raw):
            raise ConfigError(field, list(raw), f"a list with at least {g + 1} entries (entry g for generation "
                                                f"g = 0..{g}); it has {len(raw)}")
        return raw[g]
    value = _eval(_tree(field, raw), g, field, raw)
    if isinstance(value, float):
        if not value.is_integer():
            raise ConfigError(field, raw, "a whole number at every generation",
                              problem=f"g = {g} gives {value:g}; expected whole numbers (wrap the formula in floor(), ceil() or round())")
        value = int(value)
    if value < 0:
        raise ConfigError(field, raw, "", problem=f"g = {g} gives {value}; expected a size >= 0 at every generation")
    return int(value)


def values(field: str, raw: Raw, generations: int) -> tuple[int, ...]:
    """Sizes for g = 0..G, every one checked (``ConfigError`` on the first bad one)."""
    if isinstance(raw, tuple) and len(raw) < generations + 1:
        raise ConfigError(field, list(raw), f"a list with at least G + 1 = {generations + 1} entries (entry g for "
                                            f"generation g = 0..{generations}); it has {len(raw)}")
    return tuple(at(field, raw, g) for g in range(generations + 1))


def is_constant(raw: Raw) -> bool:
    """A number, a list of equal entries, or a formula that does not mention g."""
    if isinstance(raw, int):
        return True
    if isinstance(raw, tuple):
        return len(set(raw)) == 1
    return not any(isinstance(n, ast.Name) and n.id == "g" for n in ast.walk(_tree("schedule", raw)))

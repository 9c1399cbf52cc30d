"""The written-out ``__init__`` of hot values says exactly what the generated one would.

Hot values are ``@dataclass(..., init=False)`` with a hand-written constructor (see "Hot values"
in ``kasmm/core/types.py``). This reads the source (so it checks the same thing whether or not
the compiled build is loaded): for every such class, the constructor takes the init fields in
field order, with the fields' annotations and defaults (keyword-only if the dataclass is), and
stores each field exactly once, in order: the parameter, or the default of an ``init=False``
field. Anything else in the body fails, so a typo, a swapped pair or a forgotten field cannot
pass.
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import FrozenInstanceError
from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.core.types import Balances, Book, BookLevel, ClientOrderId, OpenOrder, Side

PACKAGE = Path(__file__).resolve().parents[2] / "kasmm"


def _written_out_classes() -> list[tuple[Path, str, ast.ClassDef, bool, bool, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.ClassDef):
                continue
            for dec in node.decorator_list:
                if not (isinstance(dec, ast.Call) and getattr(dec.func, "id", "") == "dataclass"):
                    continue
                kw = {k.arg: ast.literal_eval(k.value) for k in dec.keywords}
                if kw.get("init", True) is False:
                    found.append(
                        (
                            path,
                            node.name,
                            node,
                            kw.get("frozen", False),
                            kw.get("kw_only", False),
                            source,
                        )
                    )
    return found


CLASSES = _written_out_classes()


def test_the_hot_values_are_found() -> None:
    names = {name for _, name, *_ in CLASSES}
    assert {"OpenOrder", "OrderIntent", "RiskTracker", "QuoteDecision", "RestingOrder"} <= names


def _field_default(source: str, value: ast.expr | None) -> tuple[bool, str | None]:
    """(init, default source) of one field's right-hand side."""
    if value is None:
        return True, None
    if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "field":
        kw = {k.arg: k.value for k in value.keywords}
        init = ast.literal_eval(kw["init"]) if "init" in kw else True
        if "default" in kw:
            return init, ast.get_source_segment(source, kw["default"])
        if "default_factory" in kw:
            return init, "<factory>"
        return init, None
    return True, ast.get_source_segment(source, value)


@pytest.mark.parametrize(
    ("path", "name", "node", "frozen", "kw_only", "source"),
    CLASSES,
    ids=[f"{p.relative_to(PACKAGE)}::{n}" for p, n, *_ in CLASSES],
)
def test_written_out_init_matches_the_fields(
    path: Path, name: str, node: ast.ClassDef, frozen: bool, kw_only: bool, source: str
) -> None:
    fields: list[tuple[str, str, bool, str | None]] = []
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            annotation = ast.get_source_segment(source, stmt.annotation) or ""
            if annotation.startswith("ClassVar"):
                continue
            init, default = _field_default(source, stmt.value)
            fields.append((stmt.target.id, annotation, init, default))
    (init_def,) = [s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"]
    args = init_def.args
    params = args.kwonlyargs if kw_only else args.args[1:]
    assert args.args[0].arg == "self"
    assert not (args.args[1:] if kw_only else args.kwonlyargs), "mixed positional/keyword"
    defaults = (
        args.kw_defaults
        if kw_only
        else [None] * (len(params) - len(args.defaults)) + list(args.defaults)
    )
    expected = [(n, a, d) for n, a, init, d in fields if init]
    got = [
        (
            p.arg,
            ast.get_source_segment(source, p.annotation) if p.annotation else None,
            ast.get_source_segment(source, d) if d is not None else None,
        )
        for p, d in zip(params, defaults, strict=True)
    ]
    for (want_name, want_ann, want_default), (got_name, got_ann, got_default) in zip(
        expected, got, strict=True
    ):
        assert (got_name, got_ann) == (want_name, want_ann)
        if want_default == "<factory>":
            assert got_default is not None, f"{want_name}: the factory field needs a default"
        else:
            assert got_default == want_default, want_name
    body = [
        s
        for s in init_def.body
        if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))  # a docstring
    ]
    assert len(body) == len(fields), "one store per field, nothing else"
    for stmt, (field_name, _, init, default) in zip(body, fields, strict=True):
        got_source = ast.get_source_segment(source, stmt) or ""
        if not init and default is None:
            # A derived field (computed from the others, e.g. BookLevel.well_formed): stored
            # once, under its own name, in its place.
            call = stmt.value if isinstance(stmt, ast.Expr) else None
            assert frozen and isinstance(call, ast.Call), got_source
            assert [ast.get_source_segment(source, a) for a in call.args[:2]] == [
                "self",
                f'"{field_name}"',
            ]
            continue
        value = field_name if init else default
        if frozen:
            want = f'object.__setattr__(self, "{field_name}", {value})'
        else:
            want = f"self.{field_name} = {value}"
        assert got_source == want


def test_written_out_values_are_still_frozen_dataclasses() -> None:
    order = OpenOrder(
        client_id=ClientOrderId("c1"),
        side=Side.BUY,
        price=Decimal("0.08"),
        size=Decimal(10),
        remaining=Decimal(4),
        created_at=1.0,
    )
    assert order.venue_id is None and order.level == 0 and order.filled == 6
    with pytest.raises(FrozenInstanceError):
        order.price = Decimal(1)  # type: ignore[misc]
    moved = dataclasses.replace(order, price=Decimal("0.09"))
    assert moved.price == Decimal("0.09") and moved.client_id == "c1" and moved != order
    assert dataclasses.replace(moved, price=Decimal("0.08")) == order
    assert hash(dataclasses.replace(moved, price=Decimal("0.08"))) == hash(order)
    assert repr(order).startswith("OpenOrder(client_id='c1', side=<Side.BUY")
    book = Book((BookLevel(Decimal(1), Decimal(2)),), (BookLevel(Decimal(3), Decimal(2)),), 5.0)
    assert book.mid == 2 and book == Book(book.bids, book.asks, 5.0)
    assert Balances().free("KAS") == 0


def test_a_book_level_checks_itself_once_when_made() -> None:
    good = BookLevel(Decimal("0.08"), Decimal(5))
    assert good.well_formed and repr(good) == "BookLevel(price=Decimal('0.08'), size=Decimal('5'))"
    for price, size in [("NaN", "5"), ("0.08", "Infinity"), ("0", "5"), ("0.08", "-1")]:
        assert not BookLevel(Decimal(price), Decimal(size)).well_formed, (price, size)
    assert BookLevel(Decimal("0.080"), Decimal(5)) == good  # the flag is not compared

"""Property: whatever junk a file holds, loading gives valid records or a DataError, never another exception."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatalign.data_schemas import KINDS, load_records, write_jsonl
from chatalign.errors import ConfigError, DataError

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FIELD_NAMES = sorted(
    {
        "messages",
        "prompt",
        "chosen",
        "rejected",
        "strength",
        "chosen_safe",
        "rejected_safe",
        "category",
        "id",
        "source",
        "tags",
        "is_safety",
        "risk_category",
        "check",
        "text",
        "conversations",
        "score_chosen",
        "score_rejected",
        "role",
        "content",
        "from",
        "value",
        "data",
    }
)
ROLES = ["system", "user", "assistant", "human", "gpt", "tool", "Human"]
TEXTS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            " ",
            "\n\nHuman: hi\n\nAssistant: yo",
            "\n\nHuman: hi",
            "better",
            "unsure",
            "safety",
            "\ud800",
            "Assistant: x",
        ]
    ),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.floats(allow_nan=True), TEXTS)
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(ROLES), "content": TEXTS},
    optional={"from": st.sampled_from(ROLES), "value": TEXTS, "name": TEXTS},
)
JSON_VALUES = st.recursive(
    st.one_of(SCALARS, MESSAGE),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=4)
    ),
    max_leaves=12,
)
U, A = {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}
VALID_ROWS = [  # one good row per kind and format, so that the accepting path is exercised too
    {"messages": [U, A]},
    {"messages": [U, A], "lang": "en"},
    {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
    {"text": "\n\nHuman: q\n\nAssistant: a"},
    {"prompt": [U], "chosen": "a", "rejected": "b", "strength": "better"},
    {"chosen": [U, A], "rejected": [U, {"role": "assistant", "content": "b"}]},
    {"chosen": "\n\nHuman: q\n\nAssistant: a", "rejected": "\n\nHuman: q\n\nAssistant: b"},
    {"prompt": "q", "chosen": "a", "rejected": "b", "score_chosen": 5, "score_rejected": 2.5},
    {"messages": [U], "is_safety": True},
    {"prompt": "q", "check": {"type": "json"}},
]
# Rows shaped like a real format at the top, with junk one level down (where adapters look inside).
SHAPED_ROWS = st.builds(
    lambda shape, inner, extra: {**extra, **{k: inner for k in shape}},
    st.sampled_from(
        [
            ("messages",),
            ("conversations",),
            ("chosen", "rejected"),
            ("prompt", "chosen", "rejected"),
            ("prompt",),
            ("text",),
        ]
    ),
    st.one_of(
        st.lists(st.one_of(MESSAGE, SCALARS, st.lists(SCALARS, max_size=2)), max_size=4), TEXTS, SCALARS
    ),
    st.dictionaries(st.sampled_from(FIELD_NAMES), SCALARS, max_size=3),
)
ROWS = st.one_of(
    st.sampled_from(VALID_ROWS),
    SHAPED_ROWS,
    st.dictionaries(
        st.sampled_from(FIELD_NAMES), st.one_of(JSON_VALUES, st.lists(MESSAGE, max_size=4)), max_size=6
    ),
    JSON_VALUES,
)


def _lines(values, cut_points) -> bytes:
    """JSON lines, some of them cut short (a truncated write), so that broken JSON is common too."""
    out = []
    for value, cut in zip(values, cut_points, strict=False):
        line = json.dumps(value).encode("utf-8", "surrogatepass")
        out.append(line[:cut] if cut is not None else line)
    return b"\n".join(out)


def check_load(path: Path, kind: str, on_error: str) -> None:
    quarantine = path.parent / "quarantine.jsonl" if on_error == "skip" else None
    try:
        result = load_records(path, kind, on_error=on_error, quarantine=quarantine)
    except DataError:
        return
    model = KINDS[kind]
    assert result.records and all(isinstance(r, model) for r in result.records)
    # What was accepted is really valid: it writes out and reads back to the same records.
    out = path.parent / "roundtrip.jsonl"
    write_jsonl(out, result.records)
    assert load_records(out, kind).records == result.records


@SETTINGS
@given(
    data=st.binary(max_size=200),
    suffix=st.sampled_from([".jsonl", ".json", ".parquet"]),
    kind=st.sampled_from(sorted(KINDS)),
    on_error=st.sampled_from(["raise", "skip"]),
)
def test_arbitrary_bytes(data, suffix, kind, on_error):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"junk{suffix}"
        path.write_bytes(data)
        check_load(path, kind, on_error)


@SETTINGS
@given(
    rows=st.lists(ROWS, min_size=0, max_size=5),
    cuts=st.lists(st.one_of(st.none(), st.none(), st.integers(0, 40)), min_size=5, max_size=5),
    as_json_list=st.booleans(),
    kind=st.sampled_from(sorted(KINDS)),
    fmt_auto=st.booleans(),
    on_error=st.sampled_from(["raise", "skip"]),
)
def test_arbitrary_rows(rows, cuts, as_json_list, kind, fmt_auto, on_error):
    with tempfile.TemporaryDirectory() as d:
        if as_json_list:
            path = Path(d) / "rows.json"
            path.write_bytes(json.dumps(rows).encode("utf-8", "surrogatepass"))
        else:
            path = Path(d) / "rows.jsonl"
            path.write_bytes(_lines(rows, cuts))
        check_load(path, kind, on_error)


@SETTINGS
@given(
    rows=st.lists(
        st.one_of(
            st.sampled_from(VALID_ROWS),
            st.dictionaries(
                st.sampled_from(FIELD_NAMES),
                st.one_of(JSON_VALUES, st.lists(MESSAGE, max_size=4)),
                min_size=1,
                max_size=6,
            ),
        ),
        min_size=1,
        max_size=4,
    ),
    kind=st.sampled_from(sorted(KINDS)),
    fmt=st.sampled_from(["canonical", "trl", "hh", "ultrafeedback", "sharegpt"]),
)
def test_every_forced_format_on_arbitrary_objects(rows, kind, fmt):
    """Forcing a format (even one that does not apply) gives records, a DataError or a ConfigError."""
    from chatalign.data_schemas import ADAPTERS

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "rows.jsonl"
        path.write_bytes(_lines(rows, [None] * len(rows)))
        if fmt not in ADAPTERS[kind]:
            with pytest.raises(ConfigError):
                load_records(path, kind, fmt=fmt)
            return
        try:
            result = load_records(path, kind, fmt=fmt)
        except DataError:
            return
        assert all(isinstance(r, KINDS[kind]) for r in result.records)


@settings(max_examples=400, deadline=None)
@given(
    row=st.one_of(SHAPED_ROWS, st.dictionaries(st.sampled_from(FIELD_NAMES), JSON_VALUES, max_size=6)),
    kind=st.sampled_from(sorted(KINDS)),
)
def test_adapters_raise_only_adapt_errors_and_locate_every_validation_error(row, kind):
    """No file I/O, many rows: every adapter of the kind either converts or raises AdaptError, and each
    validation error of the converted dict maps back to a raw field name."""
    from pydantic import ValidationError

    from chatalign.data_schemas import ADAPTERS
    from chatalign.data_schemas.adapted import AdaptError

    for adapter in ADAPTERS[kind].values():
        try:
            adapted = adapter(row)
        except AdaptError as exc:
            assert exc.field and exc.problem
            continue
        try:
            KINDS[kind].model_validate(adapted.data)
        except ValidationError as exc:
            for err in exc.errors():
                assert isinstance(adapted.locate(tuple(err["loc"])), str)

"""chatalign.data_schemas: canonical records, readers for JSONL/JSON/Parquet/datasets, outside-format adapters.

Typical use::

    from chatalign.data_schemas import load_records
    result = load_records("prefs.jsonl", "preference")            # raises DataError on a bad row
    result = load_records("prefs.parquet", "preference", on_error="skip", quarantine="bad.jsonl")

Importing this package is cheap: pyarrow and datasets are imported only to read those formats.
"""

from chatalign.data_schemas.adapters import ADAPTERS, SCORE_GAP_THRESHOLDS, detect_format, strength_from_gap
from chatalign.data_schemas.hh_transcripts import parse_transcript
from chatalign.data_schemas.issues import BadDataError, Issue
from chatalign.data_schemas.readers import LoadResult, load_records, scan_rows
from chatalign.data_schemas.records import (
    KINDS,
    Annotation,
    Comparison,
    Conversation,
    Message,
    Preference,
    Prompt,
    Record,
    SampledAnswer,
    Strength,
)
from chatalign.data_schemas.sources import iter_rows
from chatalign.data_schemas.writers import (
    convert_file,
    kind_that_fits,
    record_dict,
    validate_file,
    write_jsonl,
)

__all__ = [
    "ADAPTERS",
    "KINDS",
    "SCORE_GAP_THRESHOLDS",
    "Annotation",
    "BadDataError",
    "Comparison",
    "Conversation",
    "Issue",
    "LoadResult",
    "Message",
    "Preference",
    "Prompt",
    "Record",
    "SampledAnswer",
    "Strength",
    "convert_file",
    "detect_format",
    "iter_rows",
    "load_records",
    "parse_transcript",
    "record_dict",
    "scan_rows",
    "strength_from_gap",
    "validate_file",
    "kind_that_fits",
    "write_jsonl",
]

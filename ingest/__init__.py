"""Getting data in: files from people (`app.py ingest`), the HTTP API and the scheduled pull share one
path. ``readers`` turns a byte stream into records (encodings in ``textfile``, values in ``values``),
``writers`` checks and stores each kind, and ``ingest`` is the one table of kinds the CLI and the API
call; ``pull`` fetches from a source on a schedule."""

from ingest.accounts import import_accounts, ingest_accounts
from ingest.readers import (
    IngestError,
    Layout,
    Problem,
    Records,
    Result,
    Row,
    detect_format,
    layouts,
    records,
)
from ingest.textfile import UnreadableText, text_stream
from ingest.writers import (
    BATCH,
    KINDS,
    Batch,
    import_signals,
    ingest,
    ingest_metrics,
    ingest_signals,
    ingest_touches,
)

__all__ = [
    "BATCH",
    "KINDS",
    "Batch",
    "IngestError",
    "Layout",
    "Problem",
    "Records",
    "Result",
    "Row",
    "UnreadableText",
    "detect_format",
    "import_accounts",
    "import_signals",
    "ingest",
    "ingest_accounts",
    "ingest_metrics",
    "ingest_signals",
    "ingest_touches",
    "layouts",
    "records",
    "text_stream",
]

"""Import of the legacy platform's tables (seed 001) into the job tables.

`import_legacy` streams multitalk_jobs, style_transfers, edited_images and datasets
out of a read-only snapshot of the legacy database and writes them, mapped as seed 002
meant (its defects fixed, see mapping.py), into video_jobs, image_jobs and text_jobs.
Every imported row carries legacy_source/legacy_id, so a re-run is idempotent and
`rollback_legacy` removes exactly what imports created.
"""

from comfygraph.db.legacy.errors import LegacyImportError
from comfygraph.db.legacy.importer import (
    ImportOptions,
    ImportReport,
    NoProgress,
    Probe,
    Progress,
    TableReport,
    import_legacy,
    rollback_legacy,
)
from comfygraph.db.legacy.mapping import Verdict
from comfygraph.db.legacy.tables import MULTITALK_WORKFLOWS, TABLES, LegacyTable, parse_tables
from comfygraph.db.legacy.target import Removed

__all__ = [
    "MULTITALK_WORKFLOWS",
    "TABLES",
    "ImportOptions",
    "ImportReport",
    "LegacyImportError",
    "LegacyTable",
    "NoProgress",
    "Probe",
    "Progress",
    "Removed",
    "TableReport",
    "Verdict",
    "import_legacy",
    "parse_tables",
    "rollback_legacy",
]

"""The custom scalars of the contract.

`DateTime` is strawberry's built-in datetime scalar (ISO-8601; the server always sends
a time zone), `JSON` any JSON value, `Upload` a file of a multipart request.
"""

from __future__ import annotations

from datetime import datetime

from strawberry.file_uploads import Upload
from strawberry.scalars import JSON

DateTime = datetime

__all__ = ["JSON", "DateTime", "Upload"]

"""Where outputs and uploads are kept, and the URLs they are served at."""

from comfygraph.storage.local import (
    LocalStorage,
    StorageError,
    StoredFile,
    open_storage,
    safe_key,
    safe_name,
)

__all__ = ["LocalStorage", "StorageError", "StoredFile", "open_storage", "safe_key", "safe_name"]

"""Files the app uploads (files.getUploadURLExternal, files.completeUploadExternal), as Slack shows them."""

from __future__ import annotations

from typing import Any

from .model import BOT_USER_ID, UploadedFile
from .store import Store


class FilesMixin(Store):
    """Uploaded files (part of SlackWorkspace)."""

    def file(self, file_id: str) -> UploadedFile:
        with self._lock:
            return self._files[file_id]

    def new_upload(self, filename: str, length: int, alt_txt: str | None) -> UploadedFile:
        with self._lock:
            upload = UploadedFile(self.next_id("F"), filename, length, alt_txt=alt_txt,
                                  created=int(self.clock.now().timestamp()))
            self._files[upload.id] = upload
            return upload

    def file_json(self, upload: UploadedFile) -> dict[str, Any]:
        url = f"{self.url}/files/{upload.id}/{upload.filename}"
        return {"id": upload.id, "created": upload.created, "timestamp": upload.created, "name": upload.filename,
                "title": upload.title or upload.filename, "mimetype": upload.mimetype,
                "filetype": upload.filename.rsplit(".", 1)[-1] if "." in upload.filename else "binary",
                "user": BOT_USER_ID, "size": len(upload.content or b""), "url_private": url,
                "url_private_download": url, "permalink": url, "is_external": False, "alt_txt": upload.alt_txt}

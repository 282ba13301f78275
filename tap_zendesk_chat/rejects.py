"""Records the tap cannot write as RECORDs (no key a target could upsert them by), kept in a file a user finds:
one JSON line each, with the stream, the reason and the record as the API sent it. Nothing is only logged."""
import json
import pathlib

from tap_zendesk_chat.dates import format_datetime, utcnow
from tap_zendesk_chat.errors import OutputError

FILE_NAME = "tap-zendesk-chat-rejects.jsonl"


def default_path(state_path, config_path):
    """Beside the state file when there is one (where a scheduler keeps the run's files), else beside the config."""
    return str(pathlib.Path(state_path or config_path).resolve().parent / FILE_NAME)


class Rejects:
    """Appends to `path`, opened on the first reject (a run that rejects nothing leaves no file); each line is
    flushed before the STATE that follows its page."""

    def __init__(self, path):
        self.path = path
        self.count = 0
        self._file = None

    def add(self, stream, why, text):
        try:
            record = json.loads(text)
        except ValueError:
            record = text.decode("utf-8", "replace")
        line = json.dumps({"stream": stream, "reason": why, "time_extracted": format_datetime(utcnow()),
                           "record": record}, ensure_ascii=False)
        try:
            if self._file is None:
                self._file = open(self.path, "a", encoding="utf-8")
            self._file.write(line + "\n")
            self._file.flush()
        except OSError as exc:
            raise OutputError(f"Could not write a record the tap cannot send as a RECORD to the rejects file "
                              f"{self.path}: {exc.strerror or exc}. Set 'rejects_path' to a writable file; no STATE "
                              "went out for it.") from None
        self.count += 1

    def close(self):
        if self._file is not None:
            self._file.close()

"""Singer messages to stdout, buffered: records go out in one write per page, flushed at each STATE."""
import errno
import io
import os
import sys

from tap_zendesk_chat.errors import OutputError
from tap_zendesk_chat.fastjson import dumps


class MessageWriter:
    """Writes SCHEMA, RECORD, STATE and ACTIVATE_VERSION lines. Nothing reaches stdout before a flush."""

    def __init__(self, out=None):
        self._failed = None  # the OutputError once stdout could not be written: nothing goes out after it
        self._owns_stdout = out is None
        if out is None:
            try:
                sys.stdout.flush()
                # Our own large buffer on fd 1: a page of records is written without joining copies of it.
                out = os.fdopen(sys.stdout.fileno(), "wb", buffering=1 << 20, closefd=False)
            except (OSError, ValueError) as exc:
                raise output_failed(exc) from None
        self._out = out
        self._text = isinstance(self._out, io.TextIOBase)
        self._buffer = []

    def write_schema(self, stream, schema, key_properties, bookmark_properties=None):
        message = {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": list(key_properties)}
        if bookmark_properties:
            message["bookmark_properties"] = list(bookmark_properties)
        self._buffer.append(dumps(message) + b"\n")

    def write_encoded(self, stream, encoded, version=None, time_extracted=None):
        """The hot path: records already serialised (bytes-like, one JSON object each, no line break);
        the envelope is serialised once per page."""
        head = b'{"type":"RECORD","stream":' + dumps(stream) + b',"record":'
        tail = b""
        if version is not None:
            tail += b',"version":' + str(int(version)).encode()
        if time_extracted is not None:
            tail += b',"time_extracted":' + dumps(time_extracted)
        tail += b"}\n"
        self._buffer += [head + record + tail for record in encoded]

    def write_activate_version(self, stream, version):
        self._buffer.append(dumps({"type": "ACTIVATE_VERSION", "stream": stream, "version": int(version)}) + b"\n")

    def write_state(self, value):
        self._buffer.append(dumps({"type": "STATE", "value": value}) + b"\n")
        self.flush()

    def discard(self):
        """Drop what no STATE covers yet (a failed page): a resume asks for it again."""
        self._buffer.clear()

    def flush(self):
        if self._failed is not None:
            raise self._failed
        try:
            if self._buffer:
                data = b"".join(self._buffer)
                self._buffer.clear()
                if self._text:
                    self._out.write(data.decode())
                else:
                    # A signal (SIGTERM while the target reads slowly) makes BufferedWriter.write return
                    # short on a blocked pipe; the rest must still go out, or a page is cut mid-record.
                    view = memoryview(data)
                    while view:
                        view = view[self._out.write(view):]
            self._out.flush()
        except OSError as exc:
            self._buffer.clear()
            self._failed = output_failed(exc, self._owns_stdout)
            raise self._failed from None


def write_text(text):
    """Text to stdout (the catalog, --about), all of it; OutputError when it cannot be written. os.write, not
    sys.stdout: a signal while the pipe is full (SIGPIPE when the reader goes) makes a buffered write return
    short, and TextIOWrapper drops the rest without an error."""
    try:
        sys.stdout.flush()
        view = memoryview(text.encode())
        while view:
            view = view[os.write(sys.stdout.fileno(), view):]
    except (OSError, ValueError) as exc:
        raise output_failed(exc) from None


def output_failed(exc, on_stdout=True):
    """The OutputError for a failed write to stdout. From here on stdout is /dev/null: what is still buffered
    (ours, sys.stdout's) would fail again at exit, and Python would print "Exception ignored ... BrokenPipeError"."""
    if on_stdout:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.close(devnull)
        except OSError:
            pass
    code = getattr(exc, "errno", None)
    if code == errno.EPIPE:
        why = "the program reading the tap's output (the target) stopped reading (broken pipe)"
    elif code == errno.ENOSPC:
        why = "no space left on the device it goes to"
    else:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return OutputError(f"Could not write to stdout: {why}. The run stopped there, and no STATE was written for "
                       "what did not go out, so the next run from the last STATE the target received loses "
                       "nothing." + (" See the target's log for why it stopped." if code == errno.EPIPE else ""))

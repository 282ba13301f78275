"""Singer messages to stdout, buffered: records go out in one write per page, flushed at each STATE."""
import json
import sys

_dumps = json.JSONEncoder(separators=(",", ":")).encode


class MessageWriter:
    """Writes SCHEMA, RECORD, STATE and ACTIVATE_VERSION lines. Nothing reaches stdout before a flush."""

    def __init__(self, out=None):
        self._out = out or sys.stdout
        self._buffer = []

    def write_schema(self, stream, schema, key_properties, bookmark_properties=None):
        message = {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": list(key_properties)}
        if bookmark_properties:
            message["bookmark_properties"] = list(bookmark_properties)
        self._buffer.append(_dumps(message) + "\n")

    def write_records(self, stream, records, version=None, time_extracted=None):
        """The hot path: the envelope is serialised once per page, each record once."""
        head = '{"type":"RECORD","stream":' + _dumps(stream) + ',"record":'
        tail = ""
        if version is not None:
            tail += ',"version":' + str(int(version))
        if time_extracted is not None:
            tail += ',"time_extracted":' + _dumps(time_extracted)
        tail += "}\n"
        self._buffer.append("".join([head + _dumps(record) + tail for record in records]))

    def write_activate_version(self, stream, version):
        self._buffer.append(_dumps({"type": "ACTIVATE_VERSION", "stream": stream, "version": int(version)}) + "\n")

    def write_state(self, value):
        self._buffer.append(_dumps({"type": "STATE", "value": value}) + "\n")
        self.flush()

    def flush(self):
        if self._buffer:
            self._out.write("".join(self._buffer))
            self._buffer.clear()
        self._out.flush()

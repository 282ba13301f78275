"""A write to stdout that fails is one OutputError, and nothing is written after it (issue 17, case 10)."""
import errno
import re

import pytest

from tap_zendesk_chat.errors import OutputError
from tap_zendesk_chat.messages import MessageWriter


class FailingOut:
    """A binary stdout that takes `good` writes, then fails with `code`."""

    def __init__(self, good, code):
        self.good, self.code, self.written = good, code, []

    def write(self, data):
        if len(self.written) >= self.good:
            raise OSError(self.code, "simulated")
        self.written.append(bytes(data))
        return len(data)

    def flush(self):
        pass


@pytest.mark.parametrize("code, words", [(errno.EPIPE, "stopped reading (broken pipe)"),
                                         (errno.ENOSPC, "no space left"), (errno.EIO, "simulated")])
def test_a_failed_write_is_one_output_error_and_nothing_goes_out_after_it(code, words):
    out = FailingOut(1, code)
    writer = MessageWriter(out)
    writer.write_state({"bookmarks": {}})
    writer.write_encoded("agents", [b'{"id":1}'])
    with pytest.raises(OutputError, match=re.escape(words)) as caught:
        writer.write_state({"bookmarks": {"agents": {"since_id": 1}}})
    assert caught.value.exit_code == 1 and "Traceback" not in str(caught.value)
    writer.write_encoded("agents", [b'{"id":2}'])
    with pytest.raises(OutputError):  # a final STATE (a signal's, the end's) is refused too
        writer.write_state({"bookmarks": {"agents": {"since_id": 2}}})
    assert out.written == [b'{"type":"STATE","value":{"bookmarks":{}}}\n']

"""The runner's stderr lines: ` - trace_id="..."` only on records logged
with a trace id (inside a handler), after the message and before any
traceback; none at all outside requests."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import logging
    from lymph import logs, trace

    logs.setup("INFO")
    log = logging.getLogger("demo")
    log.info("outside")
    trace.run_with("abc123", log.info, "inside")
    try:
        1 / 0
    except ZeroDivisionError:
        trace.run_with("t-exc", log.exception, "failed")
""")


def test_the_trace_id_field_is_there_only_with_a_trace_id():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    [outside] = [l for l in lines if "demo: outside" in l]
    assert outside.endswith("[INFO] demo: outside"), outside
    assert "trace_id" not in outside
    [inside] = [l for l in lines if "demo: inside" in l]
    assert inside.endswith('[INFO] demo: inside - trace_id="abc123"'), inside
    at = [i for i, l in enumerate(lines) if "demo: failed" in l]
    assert lines[at[0]].endswith('[ERROR] demo: failed - trace_id="t-exc"')
    assert lines[at[0] + 1] == "Traceback (most recent call last):"
    assert 'trace_id=""' not in done.stderr

"""Puts every Python process the test suite starts (``forlop serve`` and its workers, ``forlop demo``, the
scheduler) on the suite's clock, so a run at a chosen date (``FORLOP_TEST_TODAY``) is at that date everywhere.

The suite puts this folder first on ``PYTHONPATH`` and the clock's offset from the real one in
``PYTEST_CLOCK_OFFSET`` (seconds); a process started later is at the same shifted "now" as the suite, and its clock
runs on from there. Nothing happens without the variable, and nothing outside the test suite sets it.
"""

import os

_offset = os.environ.get("PYTEST_CLOCK_OFFSET")
if _offset:
    import time

    import time_machine

    time_machine.travel(time.time() + float(_offset), tick=True).start()

"""How runs execute: every step of a run in the run's own process, one after another.

Dagster's default executor starts a Python process per step; here that costs ~2-3 s of imports for
each of a day's steps (asset checks included), which is most of a run launched from the UI or the schedule (minutes
for seconds of work). The graph is a chain on a 2-core machine, so step processes bought no
parallelism. Step retries (RetryPolicy) work the same under the in-process executor.
"""

import dagster as dg


@dg.definitions
def execution() -> dg.Definitions:
    return dg.Definitions(executor=dg.in_process_executor)

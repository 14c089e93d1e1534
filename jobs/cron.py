"""Schedule for `rq cron jobs/cron.py --url $REDIS_URL` (see the README).

Every minute by default. SIGNOFF_CRON_INTERVAL (seconds) shortens it, so that a test (or a
demo) sees several sweeps in a short run; each sweep claims its rows, so schedulers on
several machines may run side by side (the sweep locks what it works on).
"""
import os

from rq import cron

from jobs.periodic import every_minute

INTERVAL_SECONDS = int(os.environ.get("SIGNOFF_CRON_INTERVAL", "60"))

cron.register(every_minute, queue_name="signoff", interval=INTERVAL_SECONDS, result_ttl=0)

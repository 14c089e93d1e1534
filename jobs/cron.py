"""Schedule for `rq cron jobs/cron.py --url $REDIS_URL` (see the README)."""
from rq import cron

from jobs.periodic import every_minute

cron.register(every_minute, queue_name="signoff", interval=60, result_ttl=0)

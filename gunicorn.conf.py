"""Gunicorn reads this from the working directory: `gunicorn wsgi:app`."""
# Review-link tokens are credentials: the access log never shows them.
logger_class = "portal.access_log.GunicornLogger"

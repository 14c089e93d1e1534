"""Settings, read from the environment once at app creation."""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

ACCEPTED_TYPES_DEFAULT = "pdf,png,jpeg,webp,svg,mp4,docx,xlsx,pptx,zip"
PLACEHOLDER_KEYS = {"", "change-me", "changeme", "dev", "secret"}
DEV_KEY_FILE = "dev-secret-key"


class ConfigError(RuntimeError):
    """The environment does not describe a runnable app."""


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _dev_secret_key(instance_path: Path) -> str:
    """A random key kept in instance/ so dev sessions survive restarts."""
    key_file = instance_path / DEV_KEY_FILE
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def _from_flask_cli() -> bool:
    """Are we inside a `flask …` command (not a web server or a worker)?"""
    import click
    from flask.cli import ScriptInfo

    context = click.get_current_context(silent=True)
    return context is not None and context.find_object(ScriptInfo) is not None


def _if_exists(path: Path) -> str:
    return str(path) if path.exists() else ""


def _normalise_database_url(url: str) -> str:
    # psycopg 3 is the driver we ship; accept the common short forms.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def build_config(instance_path: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    overrides = overrides or {}
    env = os.environ
    public_base_url = env.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    https = public_base_url.startswith("https://")
    max_upload_mb = int(env.get("MAX_UPLOAD_MB", "50"))
    config: dict[str, Any] = {
        "SECRET_KEY": env.get("SECRET_KEY", ""),
        "SECRET_KEY_FALLBACKS": [k for k in env.get("SECRET_KEY_FALLBACKS", "").split(",") if k],
        "SQLALCHEMY_DATABASE_URI": _normalise_database_url(
            env.get("DATABASE_URL", f"sqlite:///{instance_path / 'signoff.sqlite3'}")
        ),
        # hide_parameters: a database error's text never carries the values (an email's
        # body, a review link), so no log line or traceback does either.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "hide_parameters": True},
        "REDIS_URL": env.get("REDIS_URL", ""),
        # The language of anyone who has not chosen one (a client's default, a new contact's).
        "PORTAL_LANGUAGE": env.get("PORTAL_LANGUAGE", "en"),
        "PUBLIC_BASE_URL": public_base_url,
        "MAIL_SERVER": env.get("MAIL_SERVER", ""),
        "MAIL_PORT": int(env.get("MAIL_PORT", "25")),
        "MAIL_USERNAME": env.get("MAIL_USERNAME", ""),
        "MAIL_PASSWORD": env.get("MAIL_PASSWORD", ""),
        "MAIL_USE_TLS": _flag("MAIL_USE_TLS"),
        "MAIL_DEFAULT_SENDER": env.get("MAIL_DEFAULT_SENDER", "Signoff <signoff@localhost>"),
        "MAIL_MAX_ATTEMPTS": int(env.get("MAIL_MAX_ATTEMPTS", "5")),
        # Seconds before each retry of a failed send (RQ Retry, and the relay's backoff).
        "MAIL_RETRY_INTERVALS": env.get("MAIL_RETRY_INTERVALS", "60,300,1800,7200"),
        # Seconds one webhook POST may take in all (connect, send, status and headers).
        "WEBHOOK_TIMEOUT": float(env.get("WEBHOOK_TIMEOUT", "10")),
        "REMINDER_FIRST_AFTER_DAYS": int(env.get("REMINDER_FIRST_AFTER_DAYS", "2")),
        "REMINDER_EVERY_DAYS": int(env.get("REMINDER_EVERY_DAYS", "2")),
        "REMINDER_MAX": int(env.get("REMINDER_MAX", "5")),
        "REMINDER_HOUR": int(env.get("REMINDER_HOUR", "9")),  # in the client's time zone
        # A burst of comments goes out once quiet this long, or this long after its first.
        "COMMENT_QUIET_MINUTES": int(env.get("COMMENT_QUIET_MINUTES", "3")),
        "COMMENT_MAX_WAIT_MINUTES": int(env.get("COMMENT_MAX_WAIT_MINUTES", "10")),
        "SIGNING_KEY": env.get("SIGNING_KEY") or _if_exists(instance_path / "signing/seal-key.pem"),
        "SIGNING_CERT": env.get("SIGNING_CERT")
        or _if_exists(instance_path / "signing/seal-cert.pem"),
        "SIGNING_PKCS12": env.get("SIGNING_PKCS12", ""),
        "SIGNING_KEY_PASSWORD": env.get("SIGNING_KEY_PASSWORD", ""),
        # Certificates (PEM paths) of keys used before a rotation; their seals still check.
        "SIGNING_CERT_FALLBACKS": env.get("SIGNING_CERT_FALLBACKS", ""),
        "SIGNING_TSA_URL": env.get("SIGNING_TSA_URL", ""),  # RFC 3161 timestamps when set
        "VERIFY_MAX_MB": int(env.get("VERIFY_MAX_MB", "10")),
        "EVIDENCE_MAX_MB": int(env.get("EVIDENCE_MAX_MB", "10")),  # a decision on behalf's file
        "VERIFY_RATE_LIMIT": env.get("VERIFY_RATE_LIMIT", "30 per minute"),
        "MAX_UPLOAD_MB": max_upload_mb,
        # Room for the multipart envelope around a file of exactly the limit.
        "MAX_CONTENT_LENGTH": max_upload_mb * 1024 * 1024 + 64 * 1024,
        "ACCEPTED_UPLOAD_TYPES": env.get("ACCEPTED_UPLOAD_TYPES", ACCEPTED_TYPES_DEFAULT),
        "FILE_STORE": env.get("FILE_STORE", str(instance_path / "files")),
        # s3://bucket/prefix puts files on object storage instead of FILE_STORE; the
        # endpoint is for S3-protocol servers other than AWS (credentials: boto3's usual
        # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or an instance role).
        "FILE_STORAGE_URL": env.get("FILE_STORAGE_URL", ""),
        "S3_ENDPOINT_URL": env.get("S3_ENDPOINT_URL", ""),
        "S3_REGION": env.get("S3_REGION", "us-east-1"),
        # Page previews (portal/files/render.py): what one file's renderer may spend.
        "RENDER_CPU_SECONDS": int(env.get("RENDER_CPU_SECONDS", "60")),
        "RENDER_MEMORY_MB": int(env.get("RENDER_MEMORY_MB", "1024")),
        "RENDER_MAX_PAGES": int(env.get("RENDER_MAX_PAGES", "300")),
        "RENDER_MAX_IMAGE_MEGAPIXELS": float(env.get("RENDER_MAX_IMAGE_MEGAPIXELS", "50")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": https,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": https,
        "PREFERRED_URL_SCHEME": "https" if https else "http",
        "WTF_CSRF_TIME_LIMIT": None,  # tied to the session instead of a clock
        "RATELIMIT_STORAGE_URI": env.get("REDIS_URL") or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        "RATELIMIT_SWALLOW_ERRORS": True,  # a dead Redis must not take pages down
        "LOGIN_RATE_LIMIT": env.get("LOGIN_RATE_LIMIT", "10 per minute"),
        "CLIENT_RATE_LIMIT": env.get("CLIENT_RATE_LIMIT", "60 per minute"),
        "API_RATE_LIMIT": env.get("API_RATE_LIMIT", "600 per minute"),  # per API token
        "RENEW_RATE_LIMIT": env.get("RENEW_RATE_LIMIT", "5 per hour"),
        # Production shape (portal/ops): proxies in front whose X-Forwarded-* are trusted,
        # log lines as JSON or text, and who may read /-/metrics (empty: loopback only).
        "TRUSTED_PROXY_HOPS": int(env.get("TRUSTED_PROXY_HOPS", "0")),
        "LOG_FORMAT": env.get("LOG_FORMAT", "text"),
        "METRICS_TOKEN": env.get("METRICS_TOKEN", ""),
    }
    config.update(overrides)
    if "PUBLIC_BASE_URL" in overrides:  # the cookie flags follow the address actually used
        https = str(config["PUBLIC_BASE_URL"]).startswith("https://")
        for key in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
            config[key] = overrides.get(key, https)
        config["PREFERRED_URL_SCHEME"] = overrides.get("PREFERRED_URL_SCHEME",
                                                       "https" if https else "http")
    return config


def check_mail_sender(config: dict[str, Any], debug: bool) -> None:
    """A server that sends real email must send it from a real address: the agency's name
    goes in front of it (people/agency.py), but the address is the deployment's. We fail
    at start rather than guess one from PUBLIC_BASE_URL, which mail servers may refuse."""
    if debug or config.get("TESTING") or not config.get("MAIL_SERVER"):
        return
    from email.utils import parseaddr

    domain = parseaddr(config.get("MAIL_DEFAULT_SENDER") or "")[1].rpartition("@")[2].lower()
    if "." not in domain or domain == "localhost" or domain.endswith(".localhost"):
        raise ConfigError(
            "MAIL_DEFAULT_SENDER must be an address on your own domain when MAIL_SERVER is "
            f"set (it is {config.get('MAIL_DEFAULT_SENDER')!r}), for example "
            "MAIL_DEFAULT_SENDER=review@youragency.com. Emails go out from the agency's name "
            "(the admin's Agency page) at that address.")


def check_secret_key(config: dict[str, Any], instance_path: Path, debug: bool) -> None:
    """Refuse to run in production without a real key; invent one for dev and tests.

    Old keys in SECRET_KEY_FALLBACKS still verify sessions and links, so they must be
    strong too.
    """
    def weak(candidate: str) -> bool:
        return candidate.lower() in PLACEHOLDER_KEYS or len(candidate) < 16

    key = config.get("SECRET_KEY") or ""
    weak_fallbacks = [k for k in config.get("SECRET_KEY_FALLBACKS", []) if weak(k)]
    if weak_fallbacks and not (debug or config.get("TESTING")):
        raise ConfigError("SECRET_KEY_FALLBACKS holds a placeholder or a key shorter than 16 "
                          "characters; remove it or replace it with the real old key.")
    if not weak(key):
        return
    if debug or config.get("TESTING"):
        config["SECRET_KEY"] = _dev_secret_key(instance_path)
        return
    if _from_flask_cli() and (instance_path / DEV_KEY_FILE).exists():
        # `make run` made this instance; its commands (users create, jobs sweep…) work as
        # the README says. A server never takes this path: no key, no start.
        config["SECRET_KEY"] = _dev_secret_key(instance_path)
        return
    raise ConfigError(
        "SECRET_KEY is missing or too weak. Set SECRET_KEY to a long random value "
        "(for example: python -c 'import secrets; print(secrets.token_hex(32))')."
    )

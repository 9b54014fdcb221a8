"""System checks of the project around smsrouter: what it must give smsrouter for the
settings to mean what they say. Warnings, since each still works in some way:

======================  ==============================================================
smsrouter.W001          a backend with a rate_limit and a per-process default cache
smsrouter.W003          a setting named like smsrouter's that smsrouter does not read
                        (SMSROUTER_APP, INSTALLED_BACKEND): it has no effect
smsrouter.W004          a SQLite database (not in memory) without journal_mode=WAL and
                        synchronous=NORMAL: every commit waits for the disk
smsrouter.W070          two backends that bind to one SMSC account (host, port and
                        system_id): each takes its own bind, which SMSCs often refuse
smsrouter.W091          the httptester served in celery mode with a per-process channel
                        layer: replies that the workers store never reach the open page
======================  ==============================================================
"""

import difflib
import re
from typing import Any

from django.apps import apps as django_apps
from django.conf import global_settings, settings
from django.core.checks import CheckMessage, Warning
from django.utils.module_loading import import_string
from django.db.backends.sqlite3.creation import DatabaseCreation

from smsrouter import conf, dispatch


def check_rate_limits(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    configured = getattr(settings, "INSTALLED_BACKENDS", None)
    if not isinstance(configured, dict):
        return []
    limited = [name for name, config in configured.items()
               if isinstance(config, dict) and {k.lower() for k in config} & {"rate_limit"}]
    cache = settings.CACHES.get("default", {}).get("BACKEND", "")
    if limited and cache.endswith(("LocMemCache", "DummyCache")):
        return [Warning(
            f"Backends {', '.join(map(repr, limited))} have a rate_limit, but the default "
            "cache is per process: each server or worker would send at the full rate.",
            hint="CACHES = {'default': {'BACKEND': 'django.core.cache.backends.redis.RedisCache', "
            "'LOCATION': 'redis://127.0.0.1:6379/1'}}",
            id="smsrouter.W001")]
    return []


def check_setting_names(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A misspelled setting is read by nobody: conf.get() falls back to the default, and
    nothing else would ever say so."""
    known = [*conf.DEFAULTS, "INSTALLED_BACKENDS"]
    defined = set(dir(settings)) - set(dir(global_settings)) - set(known)
    strays = sorted(
        name for name in defined
        if name.startswith("SMSROUTER_")
        or difflib.get_close_matches(name, ["INSTALLED_BACKENDS"], cutoff=0.85)
    )
    warnings: list[CheckMessage] = []
    for name in strays:
        match = _closest(name, known)
        warnings.append(Warning(
            f"{name} is not a setting smsrouter reads: it has no effect.",
            hint=f"Did you mean {match}?" if match else
            "Remove it. smsrouter's settings, with their defaults: smsrouter.conf.DEFAULTS, "
            "and INSTALLED_BACKENDS.",
            id="smsrouter.W003"))
    return warnings


def _closest(name: str, known: list[str]) -> str | None:
    """The known setting `name` is a misspelling of, compared without the SMSROUTER_ that
    they all share (with it, every name would look close to every other)."""
    by_stem = {setting.removeprefix("SMSROUTER_"): setting for setting in known}
    found = difflib.get_close_matches(name.removeprefix("SMSROUTER_"), by_stem, n=1)
    return by_stem[found[0]] if found else None


#: What demo/settings.py writes for SQLite; IMMEDIATE avoids "database is locked" when two
#: requests upgrade a read to a write at once.
SQLITE_OPTIONS = ('"OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; '
                  'PRAGMA synchronous=NORMAL;", "transaction_mode": "IMMEDIATE"}')
PRAGMA = re.compile(r"pragma\s+(?:\w+\.)?(journal_mode|synchronous)\s*=\s*['\"]?(\w+)", re.IGNORECASE)


def check_link_accounts(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A bind is one per account: the lease (smsrouter.backends.smpp) keeps two processes
    from binding one backend, but two backend names for one account bind twice."""
    configured = getattr(settings, "INSTALLED_BACKENDS", None)
    if not isinstance(configured, dict):
        return []
    by_account: dict[tuple[Any, ...], list[str]] = {}
    for name, config in configured.items():
        if not isinstance(config, dict) or not _holds_link(config.get("ENGINE")):
            continue
        given = {str(key).lower(): value for key, value in config.items()}
        account = tuple(repr(given.get(key)) for key in ("host", "port", "system_id"))
        by_account.setdefault(account, []).append(str(name))
    return [Warning(
        f"Backends {', '.join(map(repr, names))} bind to one SMSC account "
        f"({account[2]} at {account[0]}:{account[1]}): each would take a bind of its own.",
        hint="Keep one backend per account (several SMSCs refuse a second bind, or split "
        "the traffic between them unasked), or ask the SMSC for an account each.",
        id="smsrouter.W070") for account, names in by_account.items() if len(names) > 1]


def _holds_link(engine: Any) -> bool:
    try:
        return bool(getattr(import_string(engine), "holds_link", False))
    except (ImportError, TypeError, ValueError):  # E003 and E004 report it
        return False


def check_sqlite_journal(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Django's SQLite defaults make each commit an fsync, and every message is a commit:
    218 echoed SMS a second through incoming() against 524 with WAL and
    synchronous=NORMAL, in one run on a 2-core machine (issue 14 measured 257 and 1,170
    end to end).
    An in-memory database (the tests') has no file to wait for."""
    warnings: list[CheckMessage] = []
    for alias, database in settings.DATABASES.items():
        name = database.get("NAME")
        if (not database.get("ENGINE", "").endswith(("sqlite3", "spatialite")) or not name
                or DatabaseCreation.is_in_memory_db(name)):
            continue
        init_command = database.get("OPTIONS", {}).get("init_command", "")
        pragmas = {key.lower(): value.lower() for key, value in PRAGMA.findall(init_command)}
        if pragmas.get("journal_mode") != "wal":
            problem = "journal_mode is not WAL"
        elif pragmas.get("synchronous") not in ("normal", "1", "off", "0"):
            problem = "synchronous is not NORMAL"
        else:
            continue
        warnings.append(Warning(
            f"SQLite {alias!r}: {problem}, so each commit waits for an fsync.",
            hint=f"Add to DATABASES[{alias!r}]: {SQLITE_OPTIONS}",
            id="smsrouter.W004"))
    return warnings


def check_live_httptester(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The httptester's page is updated through the channel layer by the process that
    stores or changes a message. Within one process an in-memory layer does (and no
    CHANNEL_LAYERS at all, live.fallback_layer); but in celery mode the workers route and
    reply, so their changes reach the page only through a layer that both share: the page
    polls only while its WebSocket is down. (Channels mode needs one anyway: E012.)"""
    if (conf.get("SMSROUTER_PROCESSING") != dispatch.CELERY or shared_channel_layer()
            or not django_apps.is_installed("smsrouter.contrib.httptester")
            or not conf.httptester_enabled()):
        return []
    return [Warning(
        "The httptester shows replies only on reload: the channel layer is per process.",
        hint="CHANNEL_LAYERS = {'default': {'BACKEND': "
        "'channels_redis.core.RedisChannelLayer', 'CONFIG': "
        "{'hosts': ['redis://127.0.0.1:6379/0']}}}",
        id="smsrouter.W091")]


def shared_channel_layer() -> bool:
    """Whether CHANNEL_LAYERS names a layer that several processes can share."""
    layer = getattr(settings, "CHANNEL_LAYERS", {}).get("default", {}).get("BACKEND", "")
    return bool(layer) and not layer.endswith("InMemoryChannelLayer")

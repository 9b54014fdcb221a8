"""System checks: wrong settings fail at start-up with a hint that says what to write.

Ids come in blocks per setting and are never reused: E00x INSTALLED_BACKENDS,
E01x SMSROUTER_PROCESSING, E02x SMSROUTER_APPS, E03x SMSROUTER_DEFAULT_RESPONSE;
E04x to E07x one backend's own options each, E08x the options every backend takes,
E09x SMSROUTER_HTTPTESTER; E10x to E12x more backends' own options (Africa's Talking,
Infobip, Vonage); E14x SMSROUTER_KEYWORDS and SMSROUTER_HELP; W00x the project around
them (`smsrouter.projectchecks`); and with `--deploy`, what production leaves open
(`smsrouter.deploychecks`).

Importing smsrouter.models without "smsrouter" in INSTALLED_APPS raises
ImproperlyConfigured there: the checks are registered by smsrouter's AppConfig, so none
of them can say it.
"""

import importlib
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.checks import CheckMessage, Error, Tags
from django.utils.functional import Promise
from django.utils.module_loading import import_string

from smsrouter import conf, deploychecks, dispatch, keywords, projectchecks
from smsrouter.backends.base import BaseBackend
from smsrouter.exceptions import ConfigurationError
from smsrouter.router import App, resolve_app

BACKEND_NAME = re.compile(r"^[\w.@+-]+$")

E001 = Error(
    "INSTALLED_BACKENDS must be a non-empty dict of {name: {'ENGINE': ...}}.",
    hint="INSTALLED_BACKENDS = {'httptester': {'ENGINE': "
    "'smsrouter.backends.httptester.HttpTesterBackend'}}",
    id="smsrouter.E001",
)
E020 = Error(
    "SMSROUTER_APPS must be a list of dotted paths to App classes.",
    hint="SMSROUTER_APPS = ['smsrouter.contrib.echo.EchoApp']",
    id="smsrouter.E020",
)
E030 = Error(
    "SMSROUTER_DEFAULT_RESPONSE must be a string (or a gettext_lazy text), or None for no "
    "default reply.",
    hint="SMSROUTER_DEFAULT_RESPONSE = \"Sorry, I didn't understand.\"",
    id="smsrouter.E030",
)
E090 = Error(
    "SMSROUTER_HTTPTESTER must be None (follow DEBUG), True or False.",
    hint="Leave SMSROUTER_HTTPTESTER out: the httptester is then served only with DEBUG on.",
    id="smsrouter.E090",
)


def check_backends(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    configured = getattr(settings, "INSTALLED_BACKENDS", None)
    if not isinstance(configured, dict) or not configured:
        return [E001]
    errors: list[CheckMessage] = []
    for name, config in configured.items():
        if not isinstance(name, str) or not BACKEND_NAME.match(name):
            errors.append(Error(
                f"Backend name {name!r} cannot appear in a URL.",
                hint="Use letters, digits and . _ - @ + only, e.g. 'kannel-mtn'.",
                id="smsrouter.E006",
            ))
            continue
        if not isinstance(config, dict):
            errors.append(Error(
                f"INSTALLED_BACKENDS[{name!r}] must be a dict, not {type(config).__name__}.",
                hint=f"INSTALLED_BACKENDS[{name!r}] = {{'ENGINE': "
                "'smsrouter.backends.<module>.<Class>'}",
                id="smsrouter.E001",
            ))
            continue
        engine = config.get("ENGINE")
        if not engine:
            errors.append(Error(
                f"Backend {name!r} has no ENGINE.",
                hint="Add 'ENGINE': 'smsrouter.backends.<module>.<Class>', for example "
                "'smsrouter.backends.httptester.HttpTesterBackend'.",
                id="smsrouter.E002",
            ))
        elif module := _as_module(engine):  # what RapidSMS's docs taught people to write
            errors.append(Error(
                f"Backend {name!r}: ENGINE {engine!r} is a module, not a class.",
                hint=_did_you_mean(module, BaseBackend, "'<module>.<BackendClass>'"),
                id="smsrouter.E004",
            ))
        else:
            errors += _check_engine(name, engine, config)
    return errors


def _check_engine(name: str, engine: str, config: dict[str, Any]) -> list[CheckMessage]:
    try:
        backend_class = import_string(engine)
    except ImportError as exc:
        return [Error(f"Backend {name!r}: cannot import ENGINE {engine!r}.",
                      hint=f"{exc}. Check the dotted path to the backend class.",
                      id="smsrouter.E003")]
    if not (isinstance(backend_class, type) and issubclass(backend_class, BaseBackend)):
        return [Error(f"Backend {name!r}: ENGINE {engine!r} is not a backend class.",
                      hint="ENGINE must name a subclass of "
                      "smsrouter.backends.base.BaseBackend.",
                      id="smsrouter.E004")]
    options = {key: value for key, value in config.items() if key != "ENGINE"}
    return backend_class.check_config(name, options)


def check_processing(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        configured = dispatch.mode()
    except ConfigurationError:
        return [Error(
            f"SMSROUTER_PROCESSING = {settings.SMSROUTER_PROCESSING!r} is not a processing mode.",
            hint=f"Use one of {', '.join(map(repr, dispatch.MODES))}; "
            f"SMSROUTER_PROCESSING = {dispatch.INLINE!r} routes in the request.",
            id="smsrouter.E010",
        )]
    if configured == dispatch.CHANNELS and not projectchecks.shared_channel_layer():
        return [Error("SMSROUTER_PROCESSING = 'channels' needs a channel layer that the web "
                      "and worker processes share.",
                      hint="CHANNEL_LAYERS = {'default': {'BACKEND': "
                      "'channels_redis.core.RedisChannelLayer', 'CONFIG': "
                      "{'hosts': ['redis://127.0.0.1:6379/0']}}}",
                      id="smsrouter.E012")]
    return []



def check_apps(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    paths = conf.get("SMSROUTER_APPS")
    if not isinstance(paths, (list, tuple)) or not all(isinstance(p, str) for p in paths):
        return [E020]
    errors: list[CheckMessage] = []
    for path in paths:
        if module := _as_module(path):  # a Django app label where a class belongs
            errors.append(Error(
                f"SMSROUTER_APPS: {path!r} is a module, not an App class.",
                hint=_did_you_mean(module, App, "'<module>.<AppClass>'"),
                id="smsrouter.E022",
            ))
            continue
        try:
            import_string(path)
        except ImportError as exc:
            errors.append(Error(f"SMSROUTER_APPS: cannot import {path!r}.",
                                hint=f"{exc}. Check the dotted path, e.g. "
                                "'smsrouter.contrib.echo.EchoApp'.",
                                id="smsrouter.E021"))
            continue
        try:
            resolve_app(path)
        except ConfigurationError as exc:
            errors.append(Error(str(exc),
                                hint="List subclasses of smsrouter.App, or of KeywordHandler "
                                "or PatternHandler from smsrouter.contrib.handlers.",
                                id="smsrouter.E022"))
    return errors


def check_default_response(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    value = conf.get("SMSROUTER_DEFAULT_RESPONSE")
    return [] if value is None or isinstance(value, (str, Promise)) else [E030]


E141 = Error(
    "SMSROUTER_HELP must be a string (or a gettext_lazy text), or None for smsrouter's own.",
    hint="SMSROUTER_HELP = \"Send REGISTER to sign up, STOP to stop.\"",
    id="smsrouter.E141",
)


def check_keywords(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if (problem := keywords.configuration_problem(conf.get("SMSROUTER_KEYWORDS"))) is not None:
        errors.append(Error(
            f"SMSROUTER_KEYWORDS {problem}.",
            hint="Leave it out for smsrouter's words, or map each meaning to its words: "
            "SMSROUTER_KEYWORDS = {'stop': ['STOP', 'ARRET'], 'start': ['START'], "
            "'help': ['HELP'], 'lang': ['LANG']}",
            id="smsrouter.E140"))
    value = conf.get("SMSROUTER_HELP")
    if not (value is None or isinstance(value, (str, Promise))):
        errors.append(E141)
    return errors


def check_httptester(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    value = conf.get("SMSROUTER_HTTPTESTER")
    return [] if value is None or isinstance(value, bool) else [E090]


def _as_module(path: str) -> ModuleType | None:
    """The module at `path`, if it is one: importing it is the only reliable test."""
    try:
        return importlib.import_module(path)
    except ImportError:
        return None


def _did_you_mean(module: ModuleType, base: type, pattern: str) -> str:
    found = [
        f"'{module.__name__}.{name}'"
        for name, obj in vars(module).items()
        if isinstance(obj, type) and issubclass(obj, base) and obj.__module__ == module.__name__
    ]
    if found:
        return f"Did you mean {' or '.join(found)}?"
    return f"Name a class in it: {pattern}."


CHECKS: tuple[Callable[..., list[CheckMessage]], ...] = (
    check_backends,
    check_processing,
    projectchecks.check_rate_limits,
    check_apps,
    check_default_response,
    check_keywords,
    check_httptester,
    projectchecks.check_setting_names,
    projectchecks.check_sqlite_journal,
    projectchecks.check_link_accounts,
    projectchecks.check_live_httptester,
)
#: What only `manage.py check --deploy` runs: where production leaves something open.
DEPLOY_CHECKS: tuple[Callable[..., list[CheckMessage]], ...] = (
    deploychecks.check_open_webhooks,
    deploychecks.check_httptester_exposed,
)


def register() -> None:
    for check in CHECKS:
        checks.register(check, "smsrouter")
    for check in DEPLOY_CHECKS:
        checks.register(check, "smsrouter", Tags.security, deploy=True)

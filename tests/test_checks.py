"""System checks: each wrong setting has an id and a hint that says what to write instead;
`check --deploy` names each URL that production leaves open to anyone."""

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.utils.translation import gettext_lazy

from smsrouter import checks, conf, deploychecks, keywords, projectchecks

HTTPTESTER = "smsrouter.backends.httptester.HttpTesterBackend"
KANNEL = "smsrouter.backends.kannel.KannelBackend"
TWILIO = {"ENGINE": "smsrouter.backends.twilio.TwilioBackend", "account_sid": "AC" + "0" * 32,
          "auth_token": "0" * 32, "from_number": "+15017122661"}
ROOT = Path(__file__).resolve().parent.parent


def ids(errors):
    return [error.id for error in errors]


def test_the_demo_settings_pass():
    assert checks.check_backends() + checks.check_apps() + checks.check_processing() == []


@pytest.mark.parametrize("value", [None, {}, [], "httptester"])
def test_installed_backends_must_be_a_non_empty_dict(settings, value):
    settings.INSTALLED_BACKENDS = value
    assert checks.check_backends() == [checks.E001]


def test_a_missing_setting_is_e001(settings):
    del settings.INSTALLED_BACKENDS
    assert checks.check_backends() == [checks.E001]


def test_a_backend_entry_must_be_a_dict(settings):
    settings.INSTALLED_BACKENDS = {"x": HTTPTESTER}
    (error,) = checks.check_backends()
    assert error.id == "smsrouter.E001" and "INSTALLED_BACKENDS['x']" in error.hint


def test_missing_engine(settings):
    settings.INSTALLED_BACKENDS = {"x": {}}
    (error,) = checks.check_backends()
    assert (error.id, error.msg) == ("smsrouter.E002", "Backend 'x' has no ENGINE.")
    assert HTTPTESTER in error.hint


def test_engine_that_does_not_import(settings):
    settings.INSTALLED_BACKENDS = {"x": {"ENGINE": "smsrouter.backends.nope.NopeBackend"}}
    (error,) = checks.check_backends()
    assert error.id == "smsrouter.E003" and "cannot import" in error.msg


def test_engine_that_is_a_module_suggests_its_classes(settings):
    """What RapidSMS's docs taught: a module path. The hint names the class to write."""
    settings.INSTALLED_BACKENDS = {"x": {"ENGINE": "smsrouter.backends.httptester"}}
    (error,) = checks.check_backends()
    assert error.id == "smsrouter.E004"
    assert error.msg == "Backend 'x': ENGINE 'smsrouter.backends.httptester' is a module, not a class."
    assert error.hint == f"Did you mean '{HTTPTESTER}'?"


def test_engine_that_is_not_a_backend_class(settings):
    settings.INSTALLED_BACKENDS = {"x": {"ENGINE": "smsrouter.contrib.echo.EchoApp"}}
    (error,) = checks.check_backends()
    assert error.id == "smsrouter.E004" and "BaseBackend" in error.hint


def test_a_backend_checks_its_own_options(settings):
    settings.INSTALLED_BACKENDS = {"x": {"ENGINE": "tests.backends.NeedsUrl"}}
    (error,) = checks.check_backends()
    assert (error.id, error.msg) == ("smsrouter.E005", "Backend 'x' needs the option 'url'.")
    settings.INSTALLED_BACKENDS = {"x": {"ENGINE": "tests.backends.NeedsUrl", "URL": "http://x"}}
    assert checks.check_backends() == []


def test_an_option_a_backend_does_not_take_is_reported_with_the_closest_one(settings):
    settings.INSTALLED_BACKENDS = {"x": {"ENGINE": "tests.backends.NeedsUrl", "url": "u", "URLS": 1}}
    (error,) = checks.check_backends()
    assert (error.id, error.msg) == ("smsrouter.E008", "Backend 'x': NeedsUrl takes no option 'urls'.")
    assert error.hint == "Did you mean 'url'?"


def test_an_option_of_the_wrong_type(settings):
    settings.INSTALLED_BACKENDS = {"x": {"ENGINE": "tests.backends.NeedsUrl", "url": "u", "retries": "3"}}
    (error,) = checks.check_backends()
    assert (error.id, error.msg) == (
        "smsrouter.E009", "Backend 'x': option 'retries' must be int, not str.")


def test_default_region_must_be_a_region_code(settings):
    settings.INSTALLED_BACKENDS = {"x": {"ENGINE": HTTPTESTER, "default_region": "Tanzania"}}
    (error,) = checks.check_backends()
    assert error.id == "smsrouter.E007" and "'TZ'" in error.hint
    settings.INSTALLED_BACKENDS = {"x": {"ENGINE": HTTPTESTER, "DEFAULT_REGION": "tz"}}
    assert checks.check_backends() == []


@pytest.mark.parametrize("name", ["a/b", "", "with space"])
def test_backend_names_must_fit_in_a_url(settings, name):
    settings.INSTALLED_BACKENDS = {name: {"ENGINE": HTTPTESTER}}
    assert ids(checks.check_backends()) == ["smsrouter.E006"]


def test_several_names_per_engine_are_fine(settings):
    settings.INSTALLED_BACKENDS = {"one": {"ENGINE": HTTPTESTER}, "two": {"ENGINE": HTTPTESTER}}
    assert checks.check_backends() == []


def test_unknown_processing_mode(settings):
    settings.SMSROUTER_PROCESSING = "threads"
    (error,) = checks.check_processing()
    assert error.id == "smsrouter.E010" and "'inline'" in error.hint


def test_channels_mode_needs_a_shared_channel_layer(settings):
    settings.SMSROUTER_PROCESSING = "channels"
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    (error,) = checks.check_processing()
    assert error.id == "smsrouter.E012" and "RedisChannelLayer" in error.hint
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}
    assert checks.check_processing() == []


def test_celery_mode_passes_where_celery_is_installed(settings):
    settings.SMSROUTER_PROCESSING = "celery"
    assert checks.check_processing() == []


def test_a_rate_limit_with_a_per_process_cache_warns(settings):
    settings.INSTALLED_BACKENDS = {"x": {"ENGINE": HTTPTESTER, "rate_limit": 5}}
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    (warning,) = projectchecks.check_rate_limits()  # several servers send in inline mode too
    assert warning.id == "smsrouter.W001" and "RedisCache" in warning.hint
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:6379/1"}}
    assert projectchecks.check_rate_limits() == []


@pytest.mark.parametrize("value", ["smsrouter.contrib.echo.EchoApp", [1], None])
def test_apps_must_be_a_list_of_paths(settings, value):
    settings.SMSROUTER_APPS = value
    assert checks.check_apps() == [checks.E020]


def test_an_app_that_does_not_import(settings):
    settings.SMSROUTER_APPS = ["myproject.sms.Nope"]
    (error,) = checks.check_apps()
    assert error.id == "smsrouter.E021" and "smsrouter.contrib.echo.EchoApp" in error.hint


def test_an_app_given_as_a_module_suggests_its_classes(settings):
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo"]
    (error,) = checks.check_apps()
    assert error.id == "smsrouter.E022"
    assert error.hint == "Did you mean 'smsrouter.contrib.echo.EchoApp'?"


def test_an_app_that_is_not_an_app(settings):
    settings.SMSROUTER_APPS = ["tests.apps.NotAnApp"]
    (error,) = checks.check_apps()
    assert error.id == "smsrouter.E022" and "not a subclass of smsrouter.App" in error.msg


def test_an_async_handler_is_reported(settings):
    settings.SMSROUTER_APPS = ["tests.apps.AsyncKeyword"]
    (error,) = checks.check_apps()
    assert error.id == "smsrouter.E022" and "Write an App" in error.msg


def test_handlers_and_apps_pass(settings):
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp", "tests.apps.Join", "tests.apps.Add"]
    assert checks.check_apps() == []


@pytest.mark.parametrize(("value", "expected"), [(None, []), ("Sorry", []), (gettext_lazy("Sorry"), []),
                                               (42, [checks.E030])])
def test_default_response_is_text_or_none(settings, value, expected):
    settings.SMSROUTER_DEFAULT_RESPONSE = value
    assert checks.check_default_response() == expected


def test_manage_py_check_fails_with_the_hint(settings):
    """The checks are registered: `manage.py check` stops and prints the hint."""
    settings.INSTALLED_BACKENDS = {"kannel-mtn": {"ENGINE": "smsrouter.backends.httptester"}}
    with pytest.raises(SystemCheckError, match=r"(?s)smsrouter\.E004.*HINT: Did you mean"):
        call_command("check")


@pytest.mark.parametrize(("value", "expected"), [
    (None, []), (True, []), (False, []), ("False", [checks.E090]), (1, [checks.E090])])
def test_the_httptester_setting_is_none_true_or_false(settings, value, expected):
    settings.SMSROUTER_HTTPTESTER = value
    assert checks.check_httptester() == expected


# `manage.py check --deploy`: what production leaves open, each warning both ways.


def open_webhooks(settings, **backends):
    settings.INSTALLED_BACKENDS = backends
    return deploychecks.check_open_webhooks()


@pytest.mark.parametrize(("config", "paths"), [
    ({"ENGINE": KANNEL}, "/backend/x/"),  # its reports carry smsrouter's signature
    ({"ENGINE": "smsrouter.backends.vumi.VumiBackend", "sendsms_url": "https://vumi.example"},
     "/backend/x/ and /backend/x/status/"),
    ({"ENGINE": "smsrouter.backends.http.HttpBackend",
      "outbound_url": "https://acme.example/?to={identity}&text={text}"}, "/backend/x/"),
])
def test_a_backend_without_a_token_is_w002_naming_its_open_paths(settings, config, paths):
    (warning,) = open_webhooks(settings, x=config)
    assert (warning.id, warning.msg) == (
        "smsrouter.W002", f"Backend 'x' has no token: anyone may call {paths}.")
    assert warning.hint.startswith(
        "Add 'token': '<a long random string>' to INSTALLED_BACKENDS['x']")
    assert open_webhooks(settings, x={**config, "TOKEN": "s3cret"}) == []


def test_an_httptester_backend_is_not_an_open_webhook(settings):
    """It takes posts only from this machine with DEBUG on (W090 covers the tester itself)."""
    assert open_webhooks(settings, phone={"ENGINE": HTTPTESTER}) == []
    assert open_webhooks(settings, gw={"ENGINE": "smsrouter.backends.locmem.LocmemBackend"}) == []


def test_twilio_without_its_signature_check_is_w050_at_deploy_only(settings):
    (warning,) = open_webhooks(settings, twilio={**TWILIO, "validate_signature": False})
    assert (warning.id, warning.msg) == (
        "smsrouter.W050", "Backend 'twilio' checks no signature: anyone may call "
        "/backend/twilio/ and /backend/twilio/status/.")
    assert checks.check_backends() == []  # no longer a warning at every `manage.py check`
    assert open_webhooks(settings, twilio={**TWILIO, "validate_signature": True}) == []
    assert open_webhooks(settings, twilio=TWILIO) == []


def test_webhooks_the_urlconf_does_not_serve_are_not_open(settings):
    settings.ROOT_URLCONF = types.ModuleType("no_urls")
    settings.ROOT_URLCONF.urlpatterns = []
    assert open_webhooks(settings, x={"ENGINE": KANNEL}, phone={"ENGINE": HTTPTESTER}) == []
    settings.SMSROUTER_HTTPTESTER = True
    assert deploychecks.check_httptester_exposed() == []


def test_the_httptester_on_with_debug_off_is_w090(settings):
    settings.SMSROUTER_HTTPTESTER = True
    (warning,) = deploychecks.check_httptester_exposed()
    assert (warning.id, warning.msg) == (
        "smsrouter.W090", "SMSROUTER_HTTPTESTER is on with DEBUG off: staff may post as any "
        "number at /httptester/.")
    for setting, debug in [(None, False), (False, False), (True, True)]:
        settings.SMSROUTER_HTTPTESTER, settings.DEBUG = setting, debug
        assert deploychecks.check_httptester_exposed() == []


def test_the_httptester_not_installed_is_not_w090(settings):
    settings.SMSROUTER_HTTPTESTER = True
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS
                               if app != "smsrouter.contrib.httptester"]
    assert deploychecks.check_httptester_exposed() == []


def test_the_deploy_checks_run_only_with_deploy(settings):
    settings.INSTALLED_BACKENDS = {"x": {"ENGINE": KANNEL}}
    call_command("check", fail_level="WARNING")
    with pytest.raises(SystemCheckError, match=r"smsrouter\.W002"):
        call_command("check", deploy=True, fail_level="WARNING", tags=["security"])


def test_check_deploy_on_production_like_settings_names_each_exposed_endpoint():
    """tests/deploy_settings.py, as an operator would run it: every warning, in one run."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.deploy_settings"}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    ours = sorted(line for line in result.stderr.splitlines() if "(smsrouter." in line)
    assert ours == [
        "?: (smsrouter.W002) Backend 'acme' has no token: anyone may call /backend/acme/.",
        "?: (smsrouter.W002) Backend 'kannel' has no token: anyone may call /backend/kannel/.",
        "?: (smsrouter.W002) Backend 'vumi' has no token: anyone may call /backend/vumi/ and "
        "/backend/vumi/status/.",
        "?: (smsrouter.W050) Backend 'twilio' checks no signature: anyone may call "
        "/backend/twilio/ and /backend/twilio/status/.",
        "?: (smsrouter.W090) SMSROUTER_HTTPTESTER is on with DEBUG off: staff may post as any "
        "number at /httptester/.",
    ]
    assert "kannel-signed" not in result.stderr


# What to add or fix, with the line to write: setting names, SQLite, the channel layer.


def test_a_misspelled_setting_names_the_one_it_meant(settings):
    settings.SMSROUTER_APP = ["smsrouter.contrib.echo.EchoApp"]
    settings.INSTALLED_BACKEND = {"x": {"ENGINE": HTTPTESTER}}
    assert [(w.id, w.msg, w.hint) for w in projectchecks.check_setting_names()] == [
        ("smsrouter.W003", "INSTALLED_BACKEND is not a setting smsrouter reads: it has no effect.",
         "Did you mean INSTALLED_BACKENDS?"),
        ("smsrouter.W003", "SMSROUTER_APP is not a setting smsrouter reads: it has no effect.",
         "Did you mean SMSROUTER_APPS?"),
    ]


def test_a_setting_like_none_of_ours_says_where_they_are(settings):
    settings.SMSROUTER_COLOUR = "blue"
    (warning,) = projectchecks.check_setting_names()
    assert warning.id == "smsrouter.W003" and "smsrouter.conf.DEFAULTS" in warning.hint


def test_every_setting_smsrouter_reads_is_known(settings):
    """The demo's and the tests' settings, and each default set explicitly, warn of nothing."""
    for name, value in conf.DEFAULTS.items():
        setattr(settings, name, value)
    assert projectchecks.check_setting_names() == []


SQLITE_FILE = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/srv/sms/db.sqlite3"}
WAL = {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
       "transaction_mode": "IMMEDIATE"}


def sqlite_warnings(monkeypatch, **databases):
    # Set on the settings object itself: override_settings would warn that DATABASES
    # cannot really change under a running test, and here only the check reads it.
    monkeypatch.setattr(django_settings, "DATABASES", databases)
    return [(w.id, w.msg) for w in projectchecks.check_sqlite_journal()]


def test_sqlite_without_wal_is_w004_with_the_options_to_add(monkeypatch):
    monkeypatch.setattr(django_settings, "DATABASES", {"default": SQLITE_FILE})
    (warning,) = projectchecks.check_sqlite_journal()
    assert (warning.id, warning.msg) == (
        "smsrouter.W004", ("SQLite 'default': journal_mode is not WAL, so each commit waits "
                           "for an fsync."))
    assert warning.hint == (
        "Add to DATABASES['default']: \"OPTIONS\": {\"init_command\": \"PRAGMA journal_mode=WAL; "
        "PRAGMA synchronous=NORMAL;\", \"transaction_mode\": \"IMMEDIATE\"}")


def test_sqlite_with_wal_but_a_full_sync_is_w004(monkeypatch):
    wal_only = {**SQLITE_FILE, "OPTIONS": {"init_command": "pragma journal_mode = 'wal'"}}
    assert sqlite_warnings(monkeypatch, default={**SQLITE_FILE, "OPTIONS": WAL}, logs=wal_only) == [
        ("smsrouter.W004", ("SQLite 'logs': synchronous is not NORMAL, so each commit waits "
                            "for an fsync."))]


@pytest.mark.parametrize("database", [
    {**SQLITE_FILE, "OPTIONS": WAL},
    {**SQLITE_FILE, "OPTIONS": {"init_command": "PRAGMA main.journal_mode=wal;PRAGMA synchronous=1"}},
    {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    {"ENGINE": "django.db.backends.sqlite3", "NAME": "file:memorydb_default?mode=memory&cache=shared"},
    {"ENGINE": "django.db.backends.postgresql", "NAME": "sms"},
])
def test_sqlite_with_wal_in_memory_or_another_database_is_fine(monkeypatch, database):
    assert sqlite_warnings(monkeypatch, default=database) == []


def test_the_httptester_in_celery_mode_needs_a_shared_channel_layer(settings):
    """One process publishes to its own page through an in-memory layer; Celery workers'
    replies reach the page only through one they share with it."""
    settings.DEBUG, settings.SMSROUTER_PROCESSING = True, "celery"
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    (warning,) = projectchecks.check_live_httptester()
    assert (warning.id, warning.msg) == (
        "smsrouter.W091",
        "The httptester shows replies only on reload: the channel layer is per process.")
    assert "RedisChannelLayer" in warning.hint
    del settings.CHANNEL_LAYERS
    assert ids(projectchecks.check_live_httptester()) == ["smsrouter.W091"]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}
    assert projectchecks.check_live_httptester() == []


def test_an_in_process_channel_layer_is_enough_inline_or_without_the_tester(settings):
    settings.DEBUG = True
    del settings.CHANNEL_LAYERS  # smsrouter.contrib.httptester.live.fallback_layer
    assert projectchecks.check_live_httptester() == []  # inline: the page's own process replies
    settings.SMSROUTER_PROCESSING = "celery"
    settings.DEBUG = False  # the tester is not served
    assert projectchecks.check_live_httptester() == []
    settings.DEBUG = True
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS
                               if app != "smsrouter.contrib.httptester"]
    assert projectchecks.check_live_httptester() == []


def manage_py_check(tmp_path, **env):
    """`manage.py check` on the demo's settings, in a process of its own, as `make run`
    would start it: a SQLite file, no Redis."""
    environ = {key: value for key, value in os.environ.items()
               if key not in ("REDIS_URL", "CHANNEL_LAYER_URL", "DATABASE_URL")}
    environ.update({"DJANGO_SETTINGS_MODULE": "demo.settings", "DJANGO_DEBUG": "1",
                    "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
                    "SMSROUTER_PROCESSING": "inline", **env})
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), str(ROOT)]))
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_demo_passes_every_check(tmp_path):
    result = manage_py_check(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


def test_the_demo_in_celery_mode_without_redis_warns_of_the_tester_page(tmp_path):
    result = manage_py_check(tmp_path, SMSROUTER_PROCESSING="celery")
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "(smsrouter." in line] == [
        ("?: (smsrouter.W091) The httptester shows replies only on reload: the channel layer "
         "is per process.")]


@pytest.mark.parametrize("removed", [("smsrouter",), ("smsrouter", "smsrouter.contrib.httptester")])
def test_without_smsrouter_in_installed_apps_importing_its_models_says_to_add_it(tmp_path, removed):
    """The httptester's ready(), or the URLconf that `check` loads, imports smsrouter.models."""
    (tmp_path / "without_smsrouter.py").write_text(
        "from demo.settings import *  # noqa: F403\n"
        f"INSTALLED_APPS = [app for app in INSTALLED_APPS if app not in {removed!r}]  # noqa: F405\n")
    result = manage_py_check(tmp_path, DJANGO_SETTINGS_MODULE="without_smsrouter")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: smsrouter.models was imported, but "
        "smsrouter is not an installed app: add \"smsrouter\" to INSTALLED_APPS in your settings.")
    assert "RuntimeError" not in result.stderr


@pytest.mark.parametrize(("value", "says"), [
    ({"stop": ["STOP"], "start": ["START"]}, None),
    (["STOP"], "must be a dict of {meaning: [words]}, not list"),
    ({"stopp": ["STOP"]}, "has 'stopp', which is not one of the meanings"),
    ({"stop": "STOP"}, "['stop'] must be a list of words"),
    ({"stop": ["STOP", 3]}, "['stop'] must be a list of words"),
    ({"stop": ["STOP NOW"]}, "['stop'] has 'STOP NOW': a keyword is one word"),
    ({"stop": ["!!"]}, "['stop'] has '!!': a keyword is one word"),
    ({"stop": ["END"], "help": ["end"]}, "has 'end' both for 'stop' and for 'help'"),
])
def test_keywords_are_checked_with_what_is_wrong(settings, value, says):
    settings.SMSROUTER_KEYWORDS = value
    errors = checks.check_keywords()
    if says is None:
        assert errors == []
        return
    [error] = errors
    assert error.id == "smsrouter.E140"
    assert error.msg.startswith(f"SMSROUTER_KEYWORDS {says}")


def test_a_keywords_setting_the_check_refuses_is_refused_when_the_words_are_read(settings):
    from smsrouter.exceptions import ConfigurationError

    settings.SMSROUTER_KEYWORDS = {"stop": ["END"], "help": ["end"]}
    with pytest.raises(ConfigurationError, match="both for 'stop' and for 'help'"):
        keywords._words()


@pytest.mark.parametrize(("value", "expected"), [(None, []), ("Send HELP", []),
                                                 (gettext_lazy("Send HELP"), []), (7, [checks.E141])])
def test_the_help_text_is_a_text_or_none(settings, value, expected):
    settings.SMSROUTER_HELP = value
    assert checks.check_keywords() == expected


def test_two_backends_binding_to_one_smsc_account_are_warned_of(settings):
    smpp = {"ENGINE": "smsrouter.backends.smpp.SmppBackend", "host": "smsc.example.org",
            "port": 2775, "system_id": "clinic"}
    settings.INSTALLED_BACKENDS = {"a": smpp, "b": {**smpp, "SYSTEM_ID": "clinic"},
                                   "c": {**smpp, "system_id": "other"},
                                   "web": {"ENGINE": "smsrouter.backends.httptester.HttpTesterBackend"}}
    [warning] = projectchecks.check_link_accounts()
    assert warning.id == "smsrouter.W070"
    assert warning.msg.startswith("Backends 'a', 'b' bind to one SMSC account")
    del settings.INSTALLED_BACKENDS["b"]
    assert projectchecks.check_link_accounts() == []

"""Backends by name: `backends["kannel-mtn"]`, built on first use from INSTALLED_BACKENDS.

The pattern of Django's CacheHandler: instances live per process and are forgotten when a
test changes INSTALLED_BACKENDS.
"""

from typing import Any

from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from smsrouter import conf
from smsrouter.backends.base import BaseBackend
from smsrouter.exceptions import ConfigurationError, UnknownBackend


class BackendHandler:
    def __init__(self) -> None:
        self._instances: dict[str, BaseBackend] = {}
        setting_changed.connect(self._reset, dispatch_uid="smsrouter-reset-backends")

    def _reset(self, *, setting: str, **kwargs: Any) -> None:
        if setting == "INSTALLED_BACKENDS":
            self._instances.clear()

    def __getitem__(self, name: str) -> BaseBackend:
        if (backend := self._instances.get(name)) is not None:
            return backend
        configured = conf.installed_backends()
        if name not in configured:
            raise UnknownBackend(name, known=configured)
        config = dict(configured[name])
        try:
            backend_class = import_string(config.pop("ENGINE"))
        except (KeyError, ImportError) as exc:
            raise ConfigurationError(
                f"INSTALLED_BACKENDS[{name!r}]: {exc!r}. Run `manage.py check` for a hint."
            ) from exc
        if not (isinstance(backend_class, type) and issubclass(backend_class, BaseBackend)):
            raise ConfigurationError(
                f"INSTALLED_BACKENDS[{name!r}]: ENGINE is not a BaseBackend subclass. "
                "Run `manage.py check` for a hint."
            )
        self._instances[name] = backend = backend_class(name, **config)
        return backend

    def names(self) -> list[str]:
        return list(conf.installed_backends())


backends = BackendHandler()

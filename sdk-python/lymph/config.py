"""Config files in lymph's shape, and `ConfigView`, what `apply_config`
receives: a dict of the interface's section with lymph's dotted
`config.get('a.b', default)`. Plain data: no imports of interfaces here."""

import os

import yaml

from lymph.exceptions import ConfigurationError

_MISSING = object()


class ConfigView(dict):
    """An interface's config section (its `class` key included, as in lymph)."""

    def get(self, key, default=None):
        return self._lookup(key, default)

    def get_raw(self, key, default=_MISSING):
        value = self._lookup(key, default)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def _lookup(self, key, default):
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        node = self
        for part in key.split(".") if isinstance(key, str) else [key]:
            if not isinstance(node, dict) or part not in node:
                return default
            node = dict.__getitem__(node, part)
        return node

    def as_dict(self):
        return dict(self)


class FileConfig:
    """A parsed config file: top-level settings and each interface's section."""

    def __init__(self, path, data):
        self.path = path
        self.data = data
        self.socket = data.get("socket") or None
        self.max_concurrency = _int(path, data, "max_concurrency")
        self.http_port = _int(path, data, "http_port")
        self.loglevel = data.get("loglevel")
        interfaces = data.get("interfaces") or {}
        if not isinstance(interfaces, dict):
            raise ConfigurationError("bad config file %s: interfaces must be a map" % path)
        self.interfaces = {}
        for name, section in interfaces.items():
            if section is None:
                section = {}
            if not isinstance(section, dict):
                raise ConfigurationError("bad config file %s: interfaces.%s must be a map" % (path, name))
            self.interfaces[str(name)] = ConfigView(section)

    @classmethod
    def read(cls, path):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ConfigurationError("cannot read config file %s: %s" % (path, e.strerror or e)) from None
        return cls.parse(path, text)

    @classmethod
    def parse(cls, path, text):
        try:
            data = yaml.safe_load(text) if text.strip() else {}
        except yaml.YAMLError as e:
            reason = " ".join(str(e).split())
            raise ConfigurationError("bad config file %s: %s" % (path, reason)) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigurationError("bad config file %s: the top level must be a map" % path)
        return cls(path, data)

    @property
    def directory(self):
        return os.path.dirname(os.path.abspath(self.path))


def _int(path, data, key):
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError("bad config file %s: %s must be a whole number, not %r" % (path, key, value))
    return value

"""The runner: `lymph instance --config FILE [--socket PATH] [--loglevel L]`
(also `python -m lymph instance ...`). Reads lymph's config shape, imports
each `interfaces: {Name: {class: module:Class}}`, runs them in one container
until SIGTERM/SIGINT, then drains and exits 0. A bad config, an unimportable
class or a daemon's refusal exits non-zero with a one-line reason."""

import argparse
import importlib
import logging
import os
import signal
import sys
import threading

from lymph.exceptions import ConfigurationError, Rejected

logger = logging.getLogger("lymph.cli")

EXIT_USAGE = 64    # bad command line, config file or interface class
EXIT_CONFIG = 78   # lymphd refused the app (e.g. its HTTP port is taken)
EXIT_FAILED = 1    # on_start failed, or anything else


def parser():
    p = argparse.ArgumentParser(prog="lymph", description="Runs lymph services attached to the local lymphd.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    instance = sub.add_parser("instance", help="run a single service instance (one process)",
                              description="Runs the interfaces a config file names, attached to lymphd.")
    instance.add_argument("--config", "-c", required=True, metavar="FILE",
                          help="the config file (lymph's shape: interfaces: {Name: {class: module:Class}})")
    instance.add_argument("--socket", metavar="PATH",
                          help="lymphd's socket; else $LYMPH_SOCKET, the config's socket:, the default")
    instance.add_argument("--loglevel", "-l", default=None, metavar="LEVEL",
                          help="DEBUG, INFO (default), WARNING, ERROR or CRITICAL")
    instance.add_argument("--max-concurrency", type=int, default=None, metavar="N",
                          help="requests handled at once (default: the config's max_concurrency, else 64)")
    return p


def import_object(spec, config_dir=None):
    """`module:Name` (or lymph's `module.Name`) imported with the current
    directory and the config file's directory on sys.path."""
    for directory in (config_dir, os.getcwd()):
        if directory and directory not in sys.path:
            sys.path.insert(0, directory)
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
    else:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise ConfigurationError("bad class %r: expected module:Class" % spec)
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise ConfigurationError("cannot import %s: %s: %s" % (spec, type(e).__name__, e)) from None
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigurationError("cannot import %s: module %s has no %s" % (spec, module_name, attr)) from None
    return obj


def build(config, socket=None, max_concurrency=None):
    """A container with the interfaces `config` names (not started)."""
    from lymph.container import Container
    from lymph.interface import Interface

    if not config.interfaces:
        raise ConfigurationError("config file %s names no interfaces" % config.path)
    container = Container(socket=socket, config=config, max_concurrency=max_concurrency,
                          app_name=os.path.splitext(os.path.basename(config.path))[0])
    for key, section in config.interfaces.items():
        name, _, version = key.partition("@")
        spec = section.get("class")
        if not spec:
            raise ConfigurationError("config file %s: interfaces.%s has no class" % (config.path, key))
        cls = import_object(str(spec), config.directory)
        if not (isinstance(cls, type) and issubclass(cls, Interface)):
            raise ConfigurationError("%s is not a lymph.Interface subclass" % spec)
        try:
            container.install(cls, name=name, version=version or None, config=section)
        except ConfigurationError:
            raise
        except Exception as e:
            raise ConfigurationError("cannot apply the config of interface %s: %s: %s"
                                     % (name, type(e).__name__, e)) from None
    return container


def instance(args):
    from lymph import logs
    from lymph.config import FileConfig

    config = FileConfig.read(args.config)
    level = (args.loglevel or config.loglevel or "INFO").upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ConfigurationError("unknown log level %r" % level)
    logs.setup(level)
    container = build(config, socket=args.socket, max_concurrency=args.max_concurrency)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    logger.info("starting %s (socket %s, from %s)", ", ".join(container.interfaces),
                container.socket, container.socket_source)
    container.start()
    try:
        while not stop.wait(0.2):
            if not container.running:
                container.wait()  # raises what ended it
                return EXIT_FAILED
    finally:
        container.stop()
    logger.info("stopped")
    return 0


def main(argv=None):
    args = parser().parse_args(argv)
    for stream in (sys.stdout, sys.stderr):
        # print() in a handler shows at once, also through a pipe (lymphctl node).
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass
    try:
        return instance(args)
    except ConfigurationError as e:
        print("error: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    except Rejected as e:
        print("error: %s" % e, file=sys.stderr)
        return EXIT_CONFIG
    except Exception as e:
        print("error: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())

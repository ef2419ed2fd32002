"""Which lymphd binary `lymph.testing` runs, in this order:

1. `$LYMPHD_BIN`, when set (an error if it is not an executable file);
2. `$LYMPH_BIN_DIR/lymphd`;
3. the newer of `target/release/lymphd` and `target/debug/lymphd` in the
   nearest directory, from the current one up, that has either (a checkout
   of the lymphd repository, wherever the tests run from within it);
4. `lymphd` on `PATH`.

When none is there the error names every place looked at."""

import os
import shutil
from pathlib import Path

PROFILES = ("release", "debug")


def _executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def checkout_builds(start=None):
    """The `target/{release,debug}/lymphd` that exist in the nearest directory
    from `start` (default: the current one) up that has any, newest first."""
    start = Path(start or Path.cwd()).resolve()
    for base in (start, *start.parents):
        found = [base / "target" / p / "lymphd" for p in PROFILES]
        found = [f for f in found if _executable(f)]
        if found:
            return sorted(found, key=lambda f: f.stat().st_mtime, reverse=True)
    return []


def find_lymphd(env=None, cwd=None):
    """The lymphd binary to run; RuntimeError naming every place looked at."""
    env = os.environ if env is None else env
    explicit = env.get("LYMPHD_BIN")
    if explicit:
        if _executable(explicit):
            return explicit
        raise RuntimeError("cannot run lymphd: $LYMPHD_BIN=%s is not an executable file" % explicit)
    tried = ["$LYMPHD_BIN (not set)"]
    bin_dir = env.get("LYMPH_BIN_DIR")
    if bin_dir:
        candidate = os.path.join(bin_dir, "lymphd")
        if _executable(candidate):
            return candidate
        tried.append("$LYMPH_BIN_DIR/lymphd (%s)" % candidate)
    else:
        tried.append("$LYMPH_BIN_DIR/lymphd ($LYMPH_BIN_DIR not set)")
    builds = checkout_builds(cwd)
    if builds:
        return str(builds[0])
    start = Path(cwd or Path.cwd()).resolve()
    tried.append("target/release/lymphd and target/debug/lymphd in %s and every directory above it" % start)
    on_path = shutil.which("lymphd", path=env.get("PATH", os.defpath))
    if on_path:
        return on_path
    tried.append("lymphd on PATH (%s)" % env.get("PATH", os.defpath))
    raise RuntimeError("cannot find lymphd; looked at: %s. Build it (`cargo build -p lymphd --bin lymphd`, "
                       "or --release) in the lymphd repository, or set LYMPHD_BIN to its path"
                       % "; ".join(tried))

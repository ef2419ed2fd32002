"""What of a failed handler's traceback is shown: the frames from the user's
own code on. The SDK's dispatch frames (and the standard library's thread
pool and asyncio frames between them and the handler) come first in every
handler's traceback and say nothing about the failure, so they are cut;
frames below the user's code (e.g. a proxy call the handler made) stay."""

import os
import sysconfig

_SDK = os.path.dirname(os.path.abspath(__file__)) + os.sep
_PATHS = sysconfig.get_paths()
_STDLIB = tuple({os.path.abspath(_PATHS[k]) + os.sep for k in ("stdlib", "platstdlib")})
_SITE = tuple({os.path.abspath(_PATHS[k]) + os.sep for k in ("purelib", "platlib")})


def is_machinery(filename):
    """Whether a frame of `filename` is the SDK's or the standard library's."""
    path = os.path.abspath(filename)
    if path.startswith(_SDK):
        return True
    return path.startswith(_STDLIB) and not path.startswith(_SITE)


def user_traceback(tb):
    """`tb` from its first frame of user code on (`tb` itself when it has none)."""
    frame = tb
    while frame is not None:
        if not is_machinery(frame.tb_frame.f_code.co_filename):
            return frame
        frame = frame.tb_next
    return tb


def user_exc_info(exc):
    """The `exc_info` to log `exc` with, its traceback starting at user code."""
    return type(exc), exc, user_traceback(exc.__traceback__)

"""The reconnect backoff: 100 ms doubling to 5 s, ±20% jitter."""

from lymph.link import Backoff


def test_backoff_doubles_to_five_seconds_with_jitter():
    for rand, factor in ((lambda: 0.0, 0.8), (lambda: 1.0, 1.2)):
        backoff = Backoff(rand)
        delays = [backoff.next_delay() for _ in range(10)]
        assert abs(delays[0] - 0.1 * factor) < 1e-9
        assert abs(delays[1] - 0.2 * factor) < 1e-9
        assert abs(delays[9] - 5.0 * factor) < 1e-9
        backoff.reset()
        assert abs(backoff.next_delay() - 0.1 * factor) < 1e-9

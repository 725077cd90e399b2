"""Argument types shared by the management commands."""

import argparse
import math


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of at least 1, got {value!r}"
        )
    return number


def non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not (number >= 0 and math.isfinite(number)):  # NaN fails both tests
        raise argparse.ArgumentTypeError(
            f"must be a finite number of seconds, 0 or more, got {value!r}"
        )
    return number


def port_number(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 65_535:
        raise argparse.ArgumentTypeError(
            f"must be a TCP port from 0 to 65535 (0 picks a free one), got {value!r}"
        )
    return number

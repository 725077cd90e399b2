"""Argument types shared by the management commands."""

import argparse


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
    if not number >= 0:  # also rejects NaN
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds, 0 or more, got {value!r}"
        )
    return number

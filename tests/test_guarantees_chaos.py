"""The chaos run, bounded: signups while relays and consumers are SIGKILLed.

bench/chaos.py starts three relays and three consumers as processes, kills
one every few seconds, cuts SNS off from the relays for a while, and lets a
fake Heap, Mailchimp and Slack fail 5% of calls and reject a few users. Its
ledger must show nothing lost, duplicated or stuck.
"""

import os

import pytest

from bench import localstack
from bench.chaos import ChaosOptions, MotoServerProcess, run
from tests import conftest, processes

USE_LOCALSTACK = conftest.AWS_BACKEND == "localstack" or localstack.is_installed()
# moto's server published about 3 messages/s fanned out to three queues in
# this run on a loaded 2-core machine, against hundreds on LocalStack, so
# without LocalStack the run is smaller.
SIGNUPS = int(os.environ.get("CHAOS_TEST_SIGNUPS", "2000" if USE_LOCALSTACK else "300"))


@pytest.fixture
def chaos_aws(request, tmp_path):
    """Return the endpoint of LocalStack when installed, else of moto's server
    in its own process, so it does not share this one's GIL."""
    if conftest.AWS_BACKEND == "localstack":
        yield request.getfixturevalue("aws_endpoint")
    elif USE_LOCALSTACK:
        with localstack.LocalStackServer() as server:
            yield server.endpoint_url
    else:
        server = MotoServerProcess(tmp_path)
        yield server.endpoint_url
        server.stop()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_chaos_run_loses_nothing(postgres, transactional_db, chaos_aws, tmp_path):
    options = ChaosOptions(
        signups=SIGNUPS,
        kill_interval=3.0,
        outage_seconds=8,
        reject_every=100,
        settle_timeout=900,
        log_dir=tmp_path,
    )

    ledger = run(options, chaos_aws, processes.database_url())

    print(ledger.format())
    rows = ledger.rows
    assert ledger.chaos["settled"]
    assert ledger.violations == []
    assert ledger.signups == SIGNUPS
    assert sum(rows["lost"].values()) == 0
    assert sum(rows["duplicate side effects"].values()) == 0
    assert sum(rows["stuck"].values()) == 0
    assert sum(rows["  of which rejected by design"].values()) > 0
    assert sum(ledger.chaos["SIGKILLs"].values()) > 0
    assert ledger.chaos["third-party transient failures"] > 0

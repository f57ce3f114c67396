"""The ``emulators`` fixture: ``spikeforge emulate`` servers shared by the e2e tests."""

import pytest
from e2e_util import Emulator


@pytest.fixture(scope="session")
def emulators():
    """Start emulators on demand; all are stopped at the end of the session."""
    started = []

    def start(*args):
        em = Emulator(*args)
        started.append(em)
        return em

    yield start
    for em in started:
        em.stop()

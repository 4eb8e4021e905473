"""Every deliberately broken initializer of ``tests/broken.py`` is caught, on the right property."""

import pytest

import initcheck
from tests.broken import BROKEN


@pytest.mark.parametrize("name, init, law, shapes, dtypes, prop", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_initializer_fails_on_its_property(name, init, law, shapes, dtypes, prop):
    report = initcheck.check(init, law, shapes=shapes, dtypes=dtypes, properties=[prop], profile="ci")
    verdicts = [v for v in report.verdicts if v.property == prop]
    assert verdicts and all(v.status == "fail" for v in verdicts), str(report)
    assert not report.passed
    for v in verdicts:
        assert v.message and v.reproduce, v

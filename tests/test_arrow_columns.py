"""Arrow arrays built from buffers equal what pyarrow.array builds, for every type of the annotation schema."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus_audit.annotate import ANNOTATION_SCHEMA, RULE_HIT
from corpus_audit.arrow_columns import column

HIT = st.fixed_dictionaries({"rule": st.text(max_size=8), "category": st.text(max_size=8),
                             "start": st.integers(0, 2**40), "end": st.integers(0, 2**40)})
VALUES = {
    pa.string(): st.one_of(st.none(), st.text(max_size=12)),
    pa.int64(): st.one_of(st.none(), st.integers(-2**63, 2**63 - 1)),
    pa.float64(): st.one_of(st.none(), st.floats(allow_nan=False)),
    pa.bool_(): st.one_of(st.none(), st.booleans()),
    pa.list_(RULE_HIT): st.one_of(st.none(), st.lists(HIT, max_size=3)),
}


@pytest.mark.parametrize("typ", list(VALUES), ids=str)
@settings(deadline=None)  # the first pa.array call imports pandas
@given(data=st.data())
def test_column_equals_pyarrow_array(typ, data):
    values = data.draw(st.lists(VALUES[typ], max_size=20))
    built = column(values, typ)
    built.validate(full=True)
    assert built.equals(pa.array(values, type=typ))


def test_every_annotation_column_type_has_a_builder():
    for f in ANNOTATION_SCHEMA:
        assert column([None], f.type).null_count == 1


def test_building_columns_does_not_import_pandas():
    import subprocess
    import sys

    code = ("import sys; from corpus_audit.annotate import ANNOTATION_SCHEMA; from corpus_audit.arrow_columns import "
            "column; [column([None, None], f.type) for f in ANNOTATION_SCHEMA]; print('pandas' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() \
        == "False"

import json

import numpy as np

from diversity.manifest import describe, update_selection_json


def test_selection_json_blocks_merge_and_a_fresh_record_replaces(tmp_path):
    update_selection_json(tmp_path, {"k": np.int64(7), "indices": np.arange(3)}, fresh=True)
    update_selection_json(tmp_path, {"truncation": {"n_cut": 2}})
    assert json.loads((tmp_path / "selection.json").read_text()) == {
        "k": 7,
        "indices": [0, 1, 2],
        "truncation": {"n_cut": 2},
    }
    update_selection_json(tmp_path, {"k": 9}, fresh=True)
    assert json.loads((tmp_path / "selection.json").read_text()) == {"k": 9}
    assert [p.name for p in tmp_path.iterdir()] == ["selection.json"]  # no temp file left behind


def test_cache_key_description_is_stable_and_skips_fitted_state():
    class Selector:
        def __init__(self):
            self.tau, self.fitted_, self._private = 0.5, object(), 1

    assert describe(Selector()) == describe(Selector())
    assert describe(Selector())["tau"] == 0.5 and "fitted_" not in describe(Selector())

"""edge.model.contract: the deployed size of a model, stated (schema 2) or read once from the old shape."""
from __future__ import annotations

from edge.model.contract import DEPLOY_SCHEMA, deployed_size, upgrade_meta, with_input_size


def _meta(schema=1, validation="native resolution, padded to 32"):
    return {"schema_version": schema, "format": "torch", "preprocess": {"imgsz": 192, "fit": "pad"},
            "codec": {"type": "prps", "input_size": 192, "thr": 0.9},
            "input": {"shape": [1, 1, 192, 192]}, "output": {"shape": [1, 1, 48, 48], "stride": 4},
            "training": {"imgsz": 192, "validation": validation}}


def test_schema_2_states_its_size_and_exports_always_know_theirs():
    m = with_input_size(_meta(schema=DEPLOY_SCHEMA), 512)
    assert deployed_size(m) == 512 and m["input"]["shape"] == [1, 1, 512, 512] and m["output"]["shape"][2:] == [128, 128]
    assert upgrade_meta({**_meta(), "format": "onnx"})[1] is True


def test_schema_1_reads_the_size_its_training_validated_at_once():
    """A run trained with --val-fit (its record: "as edge.run on 512 px exports") is deployed at 512 even
    before it has exports; a run that validated whole frames states nothing (callers keep their old path)."""
    up, known = upgrade_meta(_meta(validation="as edge.run on 512 px exports, fit pad"))
    assert known and up["schema_version"] == DEPLOY_SCHEMA and up["preprocess"]["imgsz"] == 512
    assert up["codec"]["input_size"] == 512 and up["training"]["imgsz"] == 192
    assert upgrade_meta(_meta()) == (_meta(), False)

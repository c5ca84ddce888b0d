"""The int8 recipe of `mudraj export` (issue 23): 7-bit weights, and the weight MatMuls that drift most
kept in fp32, chosen on the run's own dev sentences and recorded in the bundle."""

import json

import onnx

from serving.bundle import MODEL_FILES


def _ops(path):
    return {n.name: n.op_type for n in onnx.load(str(path)).graph.node}


def test_the_most_drifting_matmuls_stay_fp32_and_the_choice_is_recorded(tiny_run, tmp_path):
    from training.ship.export import drifting_matmuls, export, weight_matmuls

    bundle = export(tiny_run, tmp_path / "b")
    recipe = json.loads((bundle / "metadata.json").read_text())["parity"]["int8_recipe"]
    nodes = weight_matmuls(bundle / MODEL_FILES["fp32"])
    kept = recipe["fp32_matmuls"]
    assert recipe["weights"].startswith("int8 per channel, reduce_range")
    assert 0 < len(kept) <= len(nodes) // 3 and set(kept) <= set(nodes)
    ops = _ops(bundle / MODEL_FILES["int8"])
    assert all(ops.get(n) == "MatMul" for n in kept)  # left as they were
    quantized = [n for n in nodes if n not in kept]
    assert all(f"{n}_quant" in ops for n in quantized)  # the rest int8
    from serving.features import Encoder, load_tokenizer
    from training.ship.export import _dev_batches  # the same ranking, recomputed: most drifting first

    run = json.loads((tiny_run / "run.json").read_text())
    enc = Encoder(
        load_tokenizer(tiny_run / "tokenizer.json"),
        run["config"]["max_length"],
        run["config"]["context_width"],
        run["normalization"],
    )
    ranked = drifting_matmuls(bundle / MODEL_FILES["fp32"], _dev_batches(tiny_run, enc, "pair"))
    assert [d["node"] for d in ranked] == kept
    assert [d["mean_abs_logit_diff"] for d in ranked] == sorted(
        (d["mean_abs_logit_diff"] for d in ranked), reverse=True
    )


def test_an_empty_list_quantises_every_matmul(tiny_run, tmp_path):
    from training.ship.export import export, weight_matmuls

    bundle = export(tiny_run, tmp_path / "b", fp32_matmuls=[])
    ops = _ops(bundle / MODEL_FILES["int8"])
    assert all(f"{n}_quant" in ops for n in weight_matmuls(bundle / MODEL_FILES["fp32"]))

"""The memory planner's arithmetic against hand-worked numbers, DeepSpeed's own estimator, and measured tensors."""

import copy
import json
from pathlib import Path

import pytest
import torch

from chatalign.plan.memory import (
    KNOWN_SHAPES,
    GiB,
    ModelShape,
    Zero,
    activation_terms,
    known_shape,
    kv_cache_term,
    layer_activation_bytes,
    model_state_terms,
)
from chatalign.plan.phases import PhaseSpec, StageSpec, TrainedModel, min_gpus, peak, plan
from chatalign.plan.report import parse_memory

L7 = KNOWN_SHAPES["llama2-7b"]
P7 = 6_738_415_616


def total(terms, device="gpu"):
    return sum(t.bytes for t in terms if t.device == device)


def test_llama2_parameter_counts_match_the_published_models():
    # 7b by hand: embed 32000x4096 = 131,072,000, the same again for the untied LM head; per layer
    # q,k,v,o 4x4096^2 = 67,108,864 + MLP 3x4096x11008 = 135,266,304 + 2 norms 8,192 = 202,383,360;
    # x32 = 6,476,267,520; + final norm 4,096 -> 6,738,415,616
    assert L7.layer_params() == 202_383_360
    assert L7.params() == P7
    assert KNOWN_SHAPES["llama2-13b"].params() == 13_015_864_320
    assert KNOWN_SHAPES["llama2-70b"].params() == 68_976_648_192  # GQA: k, v are 8192 x 1024
    assert L7.params("scalar") == P7 - 131_072_000 + 4096  # LM head -> a 4096 x 1 score
    assert known_shape("meta-llama/Llama-2-7b-chat-hf") == L7 and known_shape("nope") is None


def test_zero3_model_states_by_hand():
    t = {x.name: x for x in model_state_terms("p", P7, P7, L7.largest_module_params(), 2, Zero(True, 3), 8)}
    assert t["p weights (16-bit)"].bytes == P7 * 2 / 8 == 1_684_603_904
    assert t["p gradients (16-bit)"].bytes == 1_684_603_904
    assert t["p optimizer (fp32 master, m, v)"].bytes == P7 * 12 / 8 == 10_107_623_424
    assert t["p fp32 gradient partition"].bytes == 3_369_207_808
    assert t["p ZeRO-3 gathered module"].bytes == 131_072_000 * 4
    assert t["p ZeRO reduce bucket"].bytes == 500_000_000 * 2
    assert "6,738,415,616 x 12 B / 8" in t["p optimizer (fp32 master, m, v)"].formula


@pytest.mark.parametrize("stage,weights,grads,opt", [(0, 1, 1, 1), (1, 1, 1, 4), (2, 1, 4, 4), (3, 4, 4, 4)])
def test_each_zero_stage_shards_what_the_zero_paper_says(stage, weights, grads, opt):
    n = 1000
    t = model_state_terms("p", n, n, 10, 2, Zero(True, stage), 4)
    by = {x.name.split(" (")[0]: x.bytes for x in t}
    assert by["p weights"] == 2 * n / weights
    assert by["p gradients"] == 2 * n / grads
    assert by["p optimizer"] == 12 * n / opt
    assert by["p fp32 gradient partition"] == 4 * n / opt


def test_offload_moves_states_to_cpu_and_without_deepspeed_states_keep_the_dtype():
    t = model_state_terms("p", 1000, 1000, 10, 2, Zero(True, 3, offload_optimizer=True, offload_param=True), 4)
    assert total(t) == 10 * 4 + 1000 * 2  # gathered module + reduce bucket stay on the GPU
    assert total(t, "cpu") == (2 + 2 + 12 + 4) * 1000 / 4
    plain = model_state_terms("p", 1000, 100, 10, 2, Zero(False), 8)  # frozen 900: weights only
    assert total(plain) == 1000 * 2 + 100 * 2 + 100 * 2 * 2


def test_model_states_agree_with_deepspeeds_own_estimator():
    ds2 = pytest.importorskip("deepspeed.runtime.zero.stage_1_and_2")
    ds3 = pytest.importorskip("deepspeed.runtime.zero.stage3")
    n, gpus, big = P7, 8, L7.largest_module_params()

    def ours(zero):
        return sum(t.bytes for t in model_state_terms("p", n, n, big, 2, zero, gpus)
                   if t.device == "gpu" and "bucket" not in t.name)

    _, gpu = ds2.estimate_zero2_model_states_mem_needs(n, gpus, 1, cpu_offload=False)
    assert ours(Zero(True, 2)) == pytest.approx(gpu, abs=8)
    _, gpu = ds2.estimate_zero2_model_states_mem_needs(n, gpus, 1, cpu_offload=True)
    assert ours(Zero(True, 2, offload_optimizer=True)) == pytest.approx(gpu, abs=8)
    _, gpu, _ = ds3.estimate_zero3_model_states_mem_needs(n, big, gpus, 1, cpu_offload=True, cpu_offload_params=True)
    assert ours(Zero(True, 3, True, True)) == pytest.approx(gpu, abs=8)
    _, gpu, _ = ds3.estimate_zero3_model_states_mem_needs(n, big, gpus, 1, cpu_offload=True, cpu_offload_params=False)
    assert ours(Zero(True, 3, offload_optimizer=True)) == pytest.approx(gpu, abs=8)
    # without offload DeepSpeed's estimator counts 18 B/param; we add the 16-bit gradient partition it keeps
    _, gpu, _ = ds3.estimate_zero3_model_states_mem_needs(n, big, gpus, 1, cpu_offload=False)
    assert ours(Zero(True, 3)) - gpu == pytest.approx(2 * n / gpus, abs=8)


def test_activations_and_kv_cache_by_hand():
    assert layer_activation_bytes(L7, 2) == 2 * (4 * 4096 + 4 * 4096 + 4) + 2 * (4 * 4096 + 4 * 11008) + 4 * 32
    assert layer_activation_bytes(L7, 2) == 186_504
    on = {t.name: t.bytes for t in activation_terms("p", L7, 4096, 2, True, 4096)}
    assert on["p activations (checkpointed layer inputs)"] == 32 * 4096 * 4096 * 2 == 1_073_741_824
    assert on["p activations (1 layer recomputed)"] == 4096 * 186_504
    assert on["p logits (saved)"] == 4096 * (32000 * 4 + 4096 * 2)
    assert on["p logits (chunk in flight)"] == 4096 * 32000 * 6
    off = {t.name: t.bytes for t in activation_terms("p", L7, 4096, 2, False)}
    assert off["p activations (no checkpointing)"] == 32 * 4096 * 186_504  # 22.8 GiB: checkpointing matters
    assert kv_cache_term(L7, 64, 1024, 1024, 2).bytes == 64 * 2048 * 32 * 2 * 32 * 128 * 2 == 64 * GiB
    assert kv_cache_term(KNOWN_SHAPES["llama2-70b"], 1, 2048, 2048, 2).bytes == 4096 * 80 * 2 * 8 * 128 * 2


def test_minimum_gpus_for_7b_sft_under_zero3_by_hand():
    policy = TrainedModel("p", L7, micro=1, tokens_per_item=4096, lm_positions_per_item=4096)
    spec = StageSpec("sft", (PhaseSpec("train", True, trained=(policy,), zero=Zero(True, 3)),), 2, True)
    usable = 72 * GiB
    # per GPU: 20 B x 6,738,415,616 / N + fixed 524,288,000 (gathered) + 1e9 (bucket) + activations ~3.1 GiB,
    # except that ZeRO-3 holds the fp32 gradient of one 1e9-element sub-group at a time (4e9 B at most)
    fixed = peak(plan(spec, 10**6)) - 20 * P7 / 10**6
    assert fixed == pytest.approx(524_288_000 + 1e9 + 3.08 * GiB, rel=0.02)
    assert peak(plan(spec, 8)) == pytest.approx(20 * P7 / 8 + fixed)  # 842M-element partition < 1e9
    assert peak(plan(spec, 2)) == pytest.approx(16 * P7 / 2 + 4e9 + fixed)  # 62.7e9 B <= 72 GiB
    assert peak(plan(spec, 1)) == pytest.approx(16 * P7 + 4e9 + fixed) and peak(plan(spec, 1)) > usable
    assert min_gpus(spec, usable) == 2
    one_process = StageSpec("x", (PhaseSpec("gen", False, trained=(policy,)),), 2, True)
    assert min_gpus(one_process, 10 * GiB) is None  # nothing shards it


def test_gpu_memory_sizes():
    assert parse_memory("80GB") == parse_memory("80GiB") == parse_memory("81920MiB") == 80 * GiB
    assert parse_memory("0.5T") == 512 * GiB
    from chatalign.errors import UserError

    with pytest.raises(UserError):
        parse_memory("lots")


# --- against real models ---------------------------------------------------------------------------------


def shape_of(model) -> ModelShape:
    c = model.config
    return ModelShape("t", c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.num_attention_heads,
                      c.num_key_value_heads, c.vocab_size, c.tie_word_embeddings)


def test_parameter_formulas_count_real_transformers_models(smol_tokenizer):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForSequenceClassification

    from ...conftest import tiny_llama

    lm = tiny_llama(smol_tokenizer, hidden=64, layers=3, heads=4, kv_heads=2)
    shape = shape_of(lm)
    assert sum(p.numel() for p in lm.parameters()) == shape.params()  # tied: one embedding matrix
    conf = copy.deepcopy(lm.config)
    conf.num_labels = 1
    rm = LlamaForSequenceClassification(conf)
    assert sum(p.numel() for p in rm.parameters()) == shape.params("scalar")
    peft = get_peft_model(lm, LoraConfig(r=4, target_modules="all-linear"))
    assert sum(p.numel() for p in peft.parameters() if p.requires_grad) == shape.lora_params(4)


def measured_saved_bytes(model, n_tokens: int) -> int:
    """Bytes autograd saves for backward in one PackedLMLoss forward (parameters excluded, storages once)."""
    from chatalign.training.lm_loss import PackedLMLoss

    ids = torch.randint(5, 1000, (1, n_tokens), generator=torch.Generator().manual_seed(0))
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        PackedLMLoss(model)(input_ids=ids, position_ids=torch.arange(n_tokens)[None], labels=ids)
    return sum(seen.values())


@pytest.mark.parametrize("dtype,checkpointing", [(torch.float32, False), (torch.float32, True),
                                                 (torch.bfloat16, False), (torch.bfloat16, True)])
def test_activation_estimate_matches_what_autograd_saves(smol_tokenizer, dtype, checkpointing):
    from ...conftest import tiny_llama

    model = tiny_llama(smol_tokenizer, hidden=128, layers=3, heads=4, kv_heads=2).to(dtype)
    model.config._attn_implementation = "sdpa"
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    n = 256
    measured = measured_saved_bytes(model, n)
    a = 4 if dtype == torch.float32 else 2
    est = sum(t.bytes for t in activation_terms("p", shape_of(model), n, a, checkpointing, n)
              if "in flight" not in t.name)  # the chunk in flight is freed before backward: not saved
    if checkpointing:  # the recomputed layer exists only during backward
        est -= n * layer_activation_bytes(shape_of(model), a)
    error = (est - measured) / measured
    print(f"{dtype} checkpointing={checkpointing}: measured {measured:,} B, estimate {est:,} B, "
          f"error {100 * error:+.2f}%")
    assert abs(error) < 0.01


def test_model_state_estimate_matches_a_real_cpu_training_step(smol_tokenizer):
    """fp32, one process, torch AdamW after one step: params + grads + optimizer state tensors vs the plan."""
    from chatalign.training.config import OptimConfig
    from chatalign.training.loop import build_optimizer

    from ...conftest import tiny_llama

    model = tiny_llama(smol_tokenizer, hidden=96, layers=2, heads=4, kv_heads=2)
    opt = build_optimizer(model.named_parameters(), OptimConfig())  # the trainer's own optimizer
    ids = torch.randint(5, 1000, (2, 32))
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    measured = sum(p.numel() * p.element_size() for p in model.parameters())
    measured += sum(p.grad.numel() * p.grad.element_size() for p in model.parameters())
    measured += sum(v.numel() * v.element_size() for s in opt.state.values() for k, v in s.items()
                    if torch.is_tensor(v) and k != "step")
    n = shape_of(model).params()
    est = total(model_state_terms("p", n, n, 0, 4, Zero(False), 1))
    error = (est - measured) / measured
    print(f"model states: measured {measured:,} B, estimate {est:,} B, error {100 * error:+.3f}%")
    assert abs(error) < 0.001


# --- the command --------------------------------------------------------------------------------------------


def run_plan(capsys, *argv):
    from chatalign.cli.main import main

    rc = main(["plan", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_plan_command_on_the_llama2_sft_recipe(capsys):
    rc, out, _ = run_plan(capsys, "--config", "recipes/llama2-7b/sft.yaml", "--gpus", "8", "--json")
    assert rc == 0
    r = json.loads(out)
    assert r["fits"] and r["min_gpus"] == 2 and r["stage"] == "sft"
    terms = {t["name"]: t for t in r["phases"][0]["terms"]}
    assert terms["policy weights (16-bit)"]["formula"] == "6,738,415,616 x 2 B / 8"
    rc, text, _ = run_plan(capsys, "--config", "recipes/llama2-7b/sft.yaml", "--gpus", "1")
    assert "DOES NOT FIT" in text and "minimum GPUs with these settings: 2" in text
    assert "deepspeed.enabled=true deepspeed.offload_optimizer=cpu" in text


def test_plan_traces_run_directories_to_the_recipe_that_writes_them(capsys):
    rc, out, _ = run_plan(capsys, "--config", "recipes/llama2-7b/reward_helpful.yaml", "--json")
    r = json.loads(out)
    assert rc == 0 and "Llama-2-7b" in r["models"]["reward model"]  # runs/llama2-7b/sft <- sft.yaml


# the 7B round as it was before it was sized: generation batches of 64, frozen models replicated
ROUND_AT_64 = ["rs.batch_size=64", "ppo.gen_batch_size=64", "eval.batch_size=64", "ppo.frozen_models=replicated"]


def test_plan_names_the_change_when_a_one_process_phase_is_too_big(capsys):
    rc, out, _ = run_plan(capsys, "--config", "recipes/llama2-7b/rlhf_round.yaml", *ROUND_AT_64, "--json")
    r = json.loads(out)
    assert rc == 0 and not r["fits"] and r["min_gpus"] is None
    changes = r["combined"]["change"].split()
    assert r["combined"]["fits"] and "ppo.gen_batch_size=16" in changes and "ppo.frozen_models=zero3" in changes


def test_plan_of_the_7b_round_with_frozen_models_partitioned(capsys):
    rc, out, _ = run_plan(capsys, "--config", "recipes/llama2-7b/rlhf_round.yaml", "--gpus", "16", "--json")
    r = json.loads(out)
    assert rc == 0 and r["fits"] and r["min_gpus"] == 14 and r["peak_phase"] == "PPO generation"
    ppo = {p["name"]: p for p in r["phases"]}["PPO generation"]
    terms = {t["name"]: t for t in ppo["terms"]}
    assert terms["reference weights (frozen)"]["formula"] == "6,738,415,616 x 2 B / 16"
    assert terms["helpful RM weights (frozen)"]["bytes"] == 6_607_347_712 * 2 / 16
    assert terms["frozen models ZeRO-3 gathered module + prefetch"]["bytes"] == (131_072_000 + 50_000_000) * 2
    assert terms["KV cache"]["bytes"] == 32 * GiB and "partitioned" in ppo["setup"]
    # replicated, the same phase holds the three whole copies instead (and no gathered working set)
    rc, out, _ = run_plan(capsys, "--config", "recipes/llama2-7b/rlhf_round.yaml", "ppo.frozen_models=replicated",
                          "--gpus", "16", "--json")
    rep = {p["name"]: p for p in json.loads(out)["phases"]}["PPO generation"]
    whole = 6_738_415_616 * 2 + 2 * 6_607_347_712 * 2
    assert rep["gpu_bytes"] - ppo["gpu_bytes"] == pytest.approx(whole * 15 / 16 - (131_072_000 + 50_000_000) * 2)
    # the round's evaluation (rank 0 alone) holds whole models either way
    assert {p["name"]: p for p in r["phases"]}["round evaluation"]["gpu_bytes"] < 72 * GiB
    # one GPU: nothing to partition over, whole copies
    rc, out, _ = run_plan(capsys, "--config", "recipes/llama2-7b/rlhf_round.yaml", "--gpus", "1", "--json")
    one = {p["name"]: p for p in json.loads(out)["phases"]}["PPO generation"]
    assert {t["name"]: t for t in one["terms"]}["reference weights (frozen)"]["bytes"] == 6_738_415_616 * 2


def test_plan_of_a_tiny_recipe_reads_the_model_dir_and_errors_are_one_line(capsys, tmp_path, tiny_model_dir):
    import yaml

    recipe = tmp_path / "sft.yaml"
    recipe.write_text(yaml.safe_dump({"stage": "sft", "model": {"name": str(tiny_model_dir), "dtype": "float32"},
                                      "data": {"train": "x.jsonl"}, "train": {"seq_len": 64}}))
    rc, out, _ = run_plan(capsys, "--config", str(recipe), "--gpus", "1", "--gpu-memory", "1GB", "--json")
    r = json.loads(out)
    assert rc == 0 and r["fits"] and r["dtype_bytes"] == 4
    assert r["phases"][0]["setup"] == "one process, no DeepSpeed (plain AdamW)"
    recipe.write_text(yaml.safe_dump({"stage": "sft", "model": {"name": "runs/nowhere/sft"},
                                      "data": {"train": "x.jsonl"}}))
    rc, _, err = run_plan(capsys, "--config", str(recipe))
    assert rc == 2 and "--model-config" in err and len(err.strip().splitlines()) == 1


def test_plan_of_a_pipeline_passes_each_steps_model_shape_on(capsys, tmp_path):
    import yaml

    recipes = Path(__file__).resolve().parents[3] / "recipes" / "llama2-7b"
    pipe = {"stage": "pipeline", "output_dir": str(tmp_path / "out"), "data": {"x": "x.jsonl"},
            "steps": [{"name": "sft", "stage": "sft", "recipe": str(recipes / "sft.yaml"),
                       "set": {"data.train": "${data.x}"}},
                      {"name": "gatt", "stage": "gatt", "recipe": str(recipes / "gatt.yaml"),
                       "set": {"model.name": "${runs.sft}"}}]}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipe))
    rc, out, _ = run_plan(capsys, "--config", str(path), "--gpus", "8", "--json")
    r = json.loads(out)
    assert rc == 0 and [s["step"] for s in r["steps"]] == ["sft", "gatt"]
    # gatt reads the sft step's run directory, which does not exist: its shape comes from the sft step
    assert r["steps"][1]["models"]["policy"].startswith("Llama-2-7b")
    assert r["min_gpus"] == max(s["min_gpus"] for s in r["steps"]) == 2


def test_the_deepspeed_launchers_local_rank_argument_is_accepted(capsys):
    rc, out, _ = run_plan(capsys, "--config", "recipes/llama2-7b/sft.yaml", "--json")
    from chatalign.cli.main import main

    assert main(["--local_rank=1", "plan", "--config", "recipes/llama2-7b/sft.yaml", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(out)


def test_qlora_weight_estimate_matches_bitsandbytes_4bit_tensors(smol_tokenizer, tmp_path):
    """The plan's 4.127 bits per NF4 weight against the bytes bitsandbytes really holds for a model loaded in
    4-bit with double quantization (packed weights, quantized block scales, their scales, the code tables)."""
    pytest.importorskip("bitsandbytes", reason="the qlora extra is in the dev install")
    import bitsandbytes as bnb

    from chatalign.models import load_causal_lm, save_hf_atomic
    from chatalign.plan.memory import qlora_state_terms
    from chatalign.training.config import LoraConfig
    from chatalign.training.lora import quantization_kwargs

    from ...conftest import tiny_llama

    model = tiny_llama(smol_tokenizer, hidden=512, layers=2, heads=4, kv_heads=2)
    shape = shape_of(model)
    save_hf_atomic(model, smol_tokenizer, tmp_path / "m")
    q = load_causal_lm(tmp_path / "m", "float32", **quantization_kwargs(LoraConfig(enabled=True, quantize="4bit"),
                                                                         "float32"))

    def size(t):
        return t.numel() * t.element_size()

    measured = 0
    for module in q.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            state = module.weight.quant_state
            measured += size(module.weight.data) + size(state.absmax) + size(state.code)
            measured += size(state.state2.absmax) + size(state.state2.code)
    (weights,) = [t for t in qlora_state_terms("p", shape, "lm", 0, 4) if "4-bit" in t.name]
    error = (weights.bytes - measured) / measured
    print(f"4-bit weights: measured {measured:,} B, estimate {weights.bytes:,.0f} B, error {100 * error:+.2f}%")
    assert abs(error) < 0.02  # the per-tensor code tables (2 KiB each) are what the estimate leaves out


def test_a_vllm_generation_phase_counts_the_engines_share_of_the_gpu():
    """generation.backend: vllm: the engine reserves memory_share of the whole GPU (its weight copy and KV cache)
    beside the resident models, instead of the native engine's KV cache and prefill."""
    from dataclasses import replace
    from types import SimpleNamespace

    from chatalign.plan.phases import FrozenModel
    from chatalign.plan.spec_parts import generation

    vllm = SimpleNamespace(backend="vllm", memory_share=0.3)
    gen = generation("eval", (FrozenModel("policy", L7),), 24, 1024, 1024, vllm)
    spec = replace(StageSpec("x", (gen,), 2), gpu_memory=80 * GiB)
    terms = {t.name: t.bytes for t in plan(spec, 1)[0].terms}
    assert terms == {"policy weights (frozen)": P7 * 2, "vLLM engine (generation.memory_share)": 0.3 * 80 * GiB}
    native = generation("eval", (FrozenModel("policy", L7),), 24, 1024, 1024, SimpleNamespace(backend="native",
                                                                                             memory_share=0.3))
    names = {t.name for t in plan(replace(spec, phases=(native,)), 1)[0].terms}
    assert names == {"policy weights (frozen)", "KV cache", "prefill working set (1 layer)"}

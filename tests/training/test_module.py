import lightning as L
import pytest
import torch
from helpers import TINY_LORA

from training.module import SFTModule
from training.tokenization import PadCollator, encode_pair


class _TrainModeProbe(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.modes = [m.training for m in pl_module.model.modules()]


@pytest.mark.parametrize("lora", [True, False])
def test_whole_model_trains_in_train_mode_and_learns(tiny_model_dir, tokenizer, lora):
    """from_pretrained returns eval mode; dropout and gradient checkpointing need train mode."""
    torch.manual_seed(0)
    module = SFTModule(
        str(tiny_model_dir),
        lora={**TINY_LORA, "enabled": lora, "dropout": 0.1},
        optimizer=lambda params: torch.optim.AdamW(params, lr=1e-2),
        gradient_checkpointing=True,
    )
    batch = PadCollator(tokenizer.pad_token_id)([encode_pair(tokenizer, "2+2?", "4, of course.", 64)] * 2)
    probe = _TrainModeProbe()
    trainer = L.Trainer(
        max_steps=8,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        callbacks=[probe],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader([batch], batch_size=None))
    assert all(probe.modes)
    assert module.train_losses_[-1] < module.train_losses_[0]
    trainable = [n for n, p in module.model.named_parameters() if p.requires_grad]
    assert all("lora_" in n for n in trainable) == lora and trainable


def _fit(module: SFTModule, batches: list, steps: int, **trainer_kwargs) -> SFTModule:
    trainer = L.Trainer(
        max_steps=steps,
        accelerator=trainer_kwargs.pop("accelerator", "cpu"),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_kwargs,
    )
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    return module


def _module(model_dir, **kwargs) -> SFTModule:
    torch.manual_seed(0)
    kwargs.setdefault("lora", TINY_LORA)
    return SFTModule(
        str(model_dir),
        optimizer=lambda params, **kw: torch.optim.AdamW(params, lr=1e-2, **kw),
        **kwargs,
    )


def _batches(tokenizer) -> list:
    pairs = [("2+2?", "4, of course."), ("Capital of France?", "Paris, on the Seine."), ("Hi", "Hello!")]
    examples = [encode_pair(tokenizer, q, a, 64) for q, a in pairs]
    return [PadCollator(tokenizer.pad_token_id)(examples), PadCollator(tokenizer.pad_token_id)(examples[:2])]


def test_chunked_and_standard_loss_train_the_same(tiny_model_dir, tokenizer):
    """The `chunked_loss` switch changes memory, not the optimisation: same losses step by step."""
    chunked = _fit(_module(tiny_model_dir, chunked_loss=True, loss_chunk_size=7), _batches(tokenizer), 4)
    standard = _fit(_module(tiny_model_dir, chunked_loss=False), _batches(tokenizer), 4)
    assert chunked.train_losses_ == pytest.approx(standard.train_losses_, abs=1e-5)


@pytest.mark.parametrize("every_n", [1, 2])
def test_checkpointing_changes_memory_not_the_optimisation(tiny_model_dir, tokenizer, every_n):
    """Recomputed activations (LoRA dropout replayed) train exactly as stored ones: the frozen base layers must
    still carry gradients to the adapters, at every checkpointing stride."""
    lora = {**TINY_LORA, "dropout": 0.1}
    checkpointed = _fit(_module(tiny_model_dir, gradient_checkpointing=every_n, lora=lora), _batches(tokenizer), 4)
    stored = _fit(_module(tiny_model_dir, lora=lora), _batches(tokenizer), 4)
    assert checkpointed.model.is_gradient_checkpointing and not stored.model.is_gradient_checkpointing
    assert checkpointed.train_losses_ == pytest.approx(stored.train_losses_, abs=1e-5)
    assert checkpointed.train_losses_[-1] < checkpointed.train_losses_[0]


def test_fused_adamw_switch_builds_a_fused_optimizer_that_trains(tiny_model_dir, tokenizer):
    module = _fit(_module(tiny_model_dir, fused_adamw=True), _batches(tokenizer), 4)
    assert module.trainer.optimizers[0].defaults["fused"] is True
    assert module.train_losses_[-1] < module.train_losses_[0]


def test_model_config_switches_compose_into_the_module(tmp_path):
    from helpers import ROOT
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                f"paths.output_dir={tmp_path}",
                "model=full",
                "model.fused_adamw=true",
                "model.compile=true",
                "model.chunked_loss=false",
                "model.attn_implementation=eager",
                "trainer=gpu",
            ],
        )
    GlobalHydra.instance().clear()
    module = instantiate(cfg.model, _convert_="all")
    assert (module.fused_adamw, module.compile_model, module.chunked_loss) == (True, True, False)
    assert module.attn_implementation == "eager" and not module.lora["enabled"]
    assert cfg.trainer.precision == "bf16-mixed"


@pytest.mark.slow
def test_compiled_decoder_gives_the_eager_loss(tiny_model_dir, tokenizer):
    """torch.compile in place: same losses, and checkpoint keys without `_orig_mod`."""
    compiled = _fit(_module(tiny_model_dir, compile=True), _batches(tokenizer), 2)
    eager = _fit(_module(tiny_model_dir), _batches(tokenizer), 2)
    assert compiled.train_losses_ == pytest.approx(eager.train_losses_, abs=1e-4)
    assert not any("_orig_mod" in k for k in compiled.state_dict())


@pytest.mark.gpu
def test_bf16_mixed_training_on_gpu_matches_fp32_losses(tiny_model_dir, tokenizer):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    bf16 = _fit(_module(tiny_model_dir), _batches(tokenizer), 2, accelerator="gpu", precision="bf16-mixed")
    fp32 = _fit(_module(tiny_model_dir), _batches(tokenizer), 2, accelerator="gpu", precision="32-true")
    assert bf16.train_losses_ == pytest.approx(fp32.train_losses_, abs=5e-2)


def test_validation_keeps_each_held_out_pair_in_order(tiny_model_dir, tokenizer):
    """Item-level held-out scores: one (NLL sum, tokens) per pair in loader order; val/loss is their token mean."""
    pairs = [("2+2?", "4, of course."), ("Capital of France?", "Paris, on the Seine."), ("Hi", "Hello!")]
    examples = [encode_pair(tokenizer, q, a, 64) for q, a in pairs]
    collate = PadCollator(tokenizer.pad_token_id)
    module = _module(tiny_model_dir)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    loader = torch.utils.data.DataLoader(examples, batch_size=2, collate_fn=collate)
    loss = trainer.validate(module, dataloaders=loader, verbose=False)[0]["val/loss"]
    assert [c for _, c in module.val_items_] == [sum(x != -100 for x in e["labels"][1:]) for e in examples]
    assert loss == pytest.approx(sum(s for s, _ in module.val_items_) / sum(c for _, c in module.val_items_))
    alone, _ = module.row_losses(collate(examples[2:]))
    assert module.val_items_[2][0] == pytest.approx(float(alone[0]), rel=1e-5)

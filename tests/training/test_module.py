import lightning as L
import pytest
import torch

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
        lora={"enabled": lora, "r": 4, "alpha": 8, "dropout": 0.1, "target_modules": ["q_proj", "v_proj"]},
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

"""Each private Lightning or torch name that ganforge relies on (ganforge.compat) still
exists and does what ganforge needs: an upgrade that moves one fails here, by name."""

from __future__ import annotations

import importlib

import lightning as L
import pytest
import torch

from ganforge import compat
from ganforge.tasks import Pix2PixTask
from tests.tasks.test_gan import TINY_D, TINY_G, tiny_data


@pytest.mark.parametrize("path, name", compat.PRIVATE_OVERRIDES, ids=[n for _, n in compat.PRIVATE_OVERRIDES])
def test_the_private_members_ganforge_overrides_exist(path, name):
    module_name, class_name = path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module_name), class_name)
    if name in ("_start_method", "_ddp_kwargs", "procs"):  # instance attributes, set in __init__
        import inspect

        source = inspect.getsource(cls.__init__)
        assert f"self.{name}" in source, f"{path}.__init__ no longer sets {name}"
    else:
        assert callable(getattr(cls, name, None)), f"{path}.{name} is gone"


class _Probe(L.Callback):
    """Reads the counters at the end of each training batch and asks to stop after the third."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, bool | None]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen.append((compat.batches_that_stepped(trainer), compat.batches_ready_in_epoch(trainer),
                          compat.logs_due(trainer)))
        assert compat.attached_trainer(pl_module) is trainer
        if batch_idx == 2:
            compat.request_stop_after_batch(trainer)


def test_the_trainer_counters_logging_flag_and_stop_request_behave(tmp_path):
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    task = Pix2PixTask(generator=TINY_G, discriminator=TINY_D)
    assert compat.attached_trainer(task) is None
    probe = _Probe()
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        inference_mode=False, log_every_n_steps=2, callbacks=[probe], default_root_dir=tmp_path)
    with pytest.raises(SIGTERMException):  # Lightning stops between batches, as on SIGTERM
        trainer.fit(task, datamodule=tiny_data(batches=6))
    assert [s[0] for s in probe.seen] == [0, 1, 2]  # this batch is counted after the hook
    assert [s[1] for s in probe.seen] == [1, 2, 3]
    # log_every_n_steps=2: batches 2 (index 1) ... reach the loggers; a logger-less trainer still says
    assert [s[2] for s in probe.seen] in ([False, True, False], [False, False, False])


def test_fused_adam_support_follows_the_device_and_dtype():
    assert compat.fused_adam_supported([torch.zeros(3, requires_grad=True)])
    assert not compat.fused_adam_supported([])
    if hasattr(torch, "float8_e4m3fn"):
        assert not compat.fused_adam_supported([torch.zeros(3, dtype=torch.int64)])


def test_compile_backends_lists_the_defaults():
    backends = compat.compile_backends()
    assert {"inductor", "aot_eager", "eager"} <= set(backends)


def test_sync_module_states_and_ddp_kwargs(tmp_path):
    import torch.distributed as dist

    from ganforge.distributed import GANDDPStrategy

    strategy = GANDDPStrategy(process_group_backend="gloo", broadcast_buffers=False)
    assert compat.ddp_kwargs(strategy) == {"broadcast_buffers": False}
    assert issubclass(compat.SubprocessScriptLauncher, object) and hasattr(compat.SubprocessScriptLauncher, "launch")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        module = torch.nn.Linear(2, 2)
        before = module.weight.detach().clone()
        compat.sync_module_states(module)  # one process: rank 0's values are the values
        assert torch.equal(module.weight, before)
    finally:
        dist.destroy_process_group()

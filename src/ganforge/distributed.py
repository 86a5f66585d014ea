"""Data parallel training for the alternating GAN loop (trainer=ddp, trainer=ddp_cpu).

Lightning's DDP wraps the whole LightningModule in one DistributedDataParallel. A GAN
step has two backward passes, each reaching one network, so that wrapper fails ("parameters
that were not used in producing the loss") unless it searches the graph for unused
parameters on every backward and all-reduces both networks' gradients each time.

`GANDDPStrategy` gives the generator and the discriminator their own wrappers instead
(`GANTask.distribute`): D's backward synchronizes D's gradients, G's backward G's, and
nothing is searched. During G's step D runs under `no_sync`, since its parameters take no
gradient there. `separate_networks=false` falls back to Lightning's route with
find_unused_parameters (bench/ddp.py measures both).

Its launcher starts the other processes of a node with this Hydra job's own overrides
and run folder, not the original command line: inside `python train.py -m ...` the
original command would start the whole sweep again in every extra process. After each run
it waits for them and resets the process group, so the next run of a sweep starts its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import torch
from lightning.pytorch.strategies import DDPStrategy
from torch.nn.parallel import DistributedDataParallel

from ganforge.compat import SubprocessScriptLauncher, ddp_kwargs, sync_module_states
from ganforge.overrides import without_hydra

__all__ = ["GANDDPStrategy", "HydraJobLauncher", "end_launched_processes", "launch_variables", "EXTRA_PROCESS_VARIABLE"]

# What a launch adds to the environment of the process that launches (Lightning's launcher).
_LAUNCH_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
# Set for the processes that HydraJobLauncher starts. When a run stops for a reason the
# first process reports (a non-finite loss, SIGTERM, Ctrl-C), they exit quietly with 0:
# Lightning's observer of the children kills the first process, and with it a sweep,
# when a child exits with an error.
EXTRA_PROCESS_VARIABLE = "GANFORGE_EXTRA_PROCESS"


class GANDDPStrategy(DDPStrategy):
    """DDP with one DistributedDataParallel per network of a `GANTask`.

    separate_networks: true (default): the two wrappers; false: Lightning's single wrapper
        with find_unused_parameters=True.
    Other keyword arguments go to DDPStrategy / DistributedDataParallel (e.g.
    process_group_backend, broadcast_buffers, gradient_as_bucket_view).
    """

    strategy_name = "gan_ddp"

    def __init__(self, separate_networks: bool = True, **kwargs: Any) -> None:
        if not separate_networks:
            kwargs["find_unused_parameters"] = True
        super().__init__(**kwargs)
        self.separate_networks = bool(separate_networks)

    def _configure_launcher(self) -> None:
        if self._start_method == "popen":
            assert self.cluster_environment is not None
            self._launcher = HydraJobLauncher(self.cluster_environment, self.num_processes, self.num_nodes)
        else:
            super()._configure_launcher()

    def configure_ddp(self) -> None:
        module = self.model
        if not self.separate_networks or not hasattr(module, "distribute"):
            super().configure_ddp()
            return
        # Each wrapper broadcasts its network from rank 0; this covers the task's own
        # buffers too (the moving average of G, counters).
        sync_module_states(module)
        device_ids = self.determine_ddp_device_ids()
        module.distribute(lambda network: DistributedDataParallel(network, device_ids=device_ids, **ddp_kwargs(self)))

    def teardown(self) -> None:
        module = self.lightning_module
        if module is not None and hasattr(module, "undistribute"):
            module.undistribute()
        super().teardown()


class HydraJobLauncher(SubprocessScriptLauncher):
    """Starts the other local ranks as `python -m ganforge.cli.train <this job's overrides>
    hydra.run.dir=<this job's folder>`, so every rank of a run in a multirun trains that
    run. Without Hydra (a script of the user's), Lightning's own command is used."""

    def _call_children_scripts(self) -> None:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            super()._call_children_scripts()
            return
        self._check_can_spawn_children()
        self.procs = []
        environment = self.cluster_environment
        os.environ["MASTER_ADDR"] = environment.main_address
        os.environ["MASTER_PORT"] = str(environment.main_port)
        os.environ["NODE_RANK"] = str(environment.node_rank())
        os.environ["LOCAL_RANK"] = str(environment.local_rank())
        os.environ["WORLD_SIZE"] = str(self.num_processes * self.num_nodes)
        from hydra.utils import get_original_cwd

        job = HydraConfig.get()
        overrides = without_hydra(job.overrides.task)
        environment_copy = {**os.environ, EXTRA_PROCESS_VARIABLE: "1"}

        for local_rank in range(1, self.num_processes):
            command = [
                sys.executable, "-m", "ganforge.cli.train", *overrides,
                f'hydra.run.dir="{job.runtime.output_dir}"',
                f"hydra.job.name=train_rank_{local_rank}",
                "hydra.output_subdir=null",  # the .hydra folder is rank 0's
            ]
            self.procs.append(subprocess.Popen(command, env={**environment_copy, "LOCAL_RANK": str(local_rank)},
                                               cwd=get_original_cwd()))


def launch_variables() -> dict[str, str | None]:
    """The launch variables as they are now (before a run), for `end_launched_processes`."""
    return {name: os.environ.get(name) for name in _LAUNCH_VARIABLES}


def end_launched_processes(trainer: Any, before: dict[str, str | None]) -> None:
    """After a run that launched other processes (trainer.strategy.launcher.procs): wait
    for them, end the process group and restore the launch variables, so that the next
    run of a sweep launches and connects anew."""
    children = list(getattr(getattr(getattr(trainer, "strategy", None), "launcher", None), "procs", None) or [])
    if not children:
        return
    for child in children:
        child.wait()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

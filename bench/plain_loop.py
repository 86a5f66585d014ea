"""The plain PyTorch loop that bench/train_step.py times against our LightningModules: the
same networks, losses and optimizers, written by hand; and its FLOPs."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

class PlainLoop:
    """pix2pix / compression / generation training by hand: G forward once; D step on
    (real, fake.detach()); G step on D(fake) + the extra losses, D's weights excluded from
    G's backward; Adam for both; the EMA of G and the symbol counts where the task keeps them.

    Generation (SNDCGAN, SNGAN): z ~ N(0, I) (N, z_dim) from torch's generator, fake = G(z,
    labels) (labels only for a conditional model), D(image, labels) -> (N,) logits; the G
    step (and the EMA update) only on every n_critic-th batch, counted by the loop as the
    task counts batch_idx, and on the other batches G's forward without a graph."""

    def __init__(self, task) -> None:
        from ganforge.tasks import CompressionTask, GenerationTask

        if task.penalty.enabled or task.augment.enabled:
            raise ValueError("the plain loop has no gradient penalty or DiffAugment: bench a config without them")
        self.task = task.train()
        self.compression = isinstance(task, CompressionTask)
        self.generation = isinstance(task, GenerationTask)
        self.n_critic = task.n_critic
        self.batches = 0  # as the task's batch_idx: G steps on batches n_critic - 1, 2 n_critic - 1, ...
        self.G, self.D, self.gan_loss = task.generator, task.discriminator, task.gan_loss
        # The task's own Adam (fused where the task's is): the same optimizers as ours.
        self.opt_g = task.adam(self.G.parameters(), task.optim.lr_g)
        self.opt_d = task.adam(self.D.parameters(), task.optim.lr_d)
        self.ema = copy.deepcopy(self.G).requires_grad_(False) if task.ema_decay is not None else None
        self.ema_updates = 0
        if self.compression:
            levels = self.G.quantizer.num_centers
            self.symbol_counts = torch.zeros(self.G.bottleneck, levels + 1, levels, dtype=torch.long)

    def inputs(self, batch: dict) -> tuple[torch.Tensor | None, torch.Tensor]:
        if self.generation:
            return (batch["label"] if self.task.conditional else None), batch["image"] * 2 - 1
        if self.compression:
            return None, batch["image"] * 2 - 1
        if self.task.data_kind == "images":
            from ganforge.data import lab_to_network, rgb_to_lab

            return lab_to_network(rgb_to_lab(batch["image"]))
        return batch["input"] * 2 - 1, batch["target"] * 2 - 1

    def d_out(self, condition, image):
        if self.generation:
            return self.D(image, condition)
        if self.compression:
            return self.D.features(image)  # per scale: every block's output, logits last
        return self.D(torch.cat([condition, image], dim=1))

    def logits(self, output):
        return [scale[-1] for scale in output] if self.compression else output

    def extra_losses(self, real, fake, d_fake, d_real) -> dict[str, torch.Tensor]:
        if self.generation:
            return {}
        if not self.compression:
            return {"l1": self.task.lambda_l1 * F.l1_loss(fake, real)}
        fm = [F.l1_loss(f, r.detach()) for fs, rs in zip(d_fake, d_real) for f, r in zip(fs[:-1], rs[:-1])]
        return {"mse": self.task.lambda_mse * F.mse_loss(fake, real), "fm": self.task.lambda_fm * torch.stack(fm).mean()}

    @torch.no_grad()
    def count_symbols(self, w_bar: torch.Tensor) -> None:
        levels = self.symbol_counts.shape[2]
        symbols = self.G.quantizer.indices(w_bar)
        above = torch.full_like(symbols, levels)
        above[:, :, 1:] = symbols[:, :, :-1]
        channel = torch.arange(symbols.shape[1]).view(1, -1, 1, 1)
        flat = ((channel * (levels + 1) + above) * levels + symbols).flatten()
        self.symbol_counts += torch.bincount(flat, minlength=self.symbol_counts.numel()).view_as(self.symbol_counts)

    @torch.no_grad()
    def update_ema(self) -> None:
        decay = min(self.task.ema_decay, (1 + self.ema_updates) / (10 + self.ema_updates))
        for average, current in zip(self.ema.parameters(), self.G.parameters()):
            average.lerp_(current, 1 - decay)
        for average, current in zip(self.ema.buffers(), self.G.buffers()):
            average.copy_(current)
        self.ema_updates += 1

    def step(self, batch: dict, check: bool = False, train_generator: bool | None = None) -> dict:
        """One training batch: a D step, and a G step on every n_critic-th batch (or as
        `train_generator` says). `check` compares inputs and losses with the task's own
        methods on the first batch with a G step from here on (`matches_task`)."""
        if train_generator is None:
            train_generator = (self.batches + 1) % self.n_critic == 0
        self.batches += 1
        condition, real = self.inputs(batch)
        if self.compression:
            fake, w_bar = self.G(real)
            self.count_symbols(w_bar)
        elif self.generation:
            z = torch.randn(real.shape[0], self.task.z_dim)
            with torch.set_grad_enabled(train_generator):
                fake = self.G(z, condition)
        else:
            fake = self.G(condition)

        self.D.requires_grad_(True)
        d_real = self.d_out(condition, real)
        d_fake = self.d_out(condition, fake.detach())
        loss_d = self.gan_loss.discriminator(self.logits(d_real), self.logits(d_fake))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        result = {"loss_d": loss_d.item(), "generator_step": train_generator}
        if not train_generator:
            return result

        self.D.requires_grad_(False)
        d_fake = self.d_out(condition, fake)
        loss_adv = self.gan_loss.generator(self.logits(d_fake))
        extras = self.extra_losses(real, fake, d_fake, d_real)
        loss_g = loss_adv + sum(extras.values())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        if self.ema is not None:
            self.update_ema()
        result["loss_g"] = loss_g.item()
        if check:
            result["matches_task"] = self.check_against_task(batch, condition, real, fake.detach(), d_fake, d_real,
                                                             extras)
        return result

    @torch.no_grad()
    def check_against_task(self, batch, condition, real, fake, d_fake, d_real, extras) -> bool:
        """Our inputs and extra losses equal the task's own `prepare` and `generator_losses`,
        and G's adversarial loss on the same d_fake the task's (generation: prepare(batch).real
        is image * 2 - 1, the condition the labels of a conditional model, else None)."""
        example = self.task.prepare(batch)
        same_inputs = torch.equal(example.real, real) and (
            torch.equal(example.condition, condition) if condition is not None else example.condition is None)
        theirs = self.task.generator_losses(example, fake, d_fake, _detach(d_real))
        mine = self.extra_losses(real, fake, d_fake, d_real)
        same_losses = theirs.keys() == mine.keys() and all(
            torch.allclose(theirs[k], mine[k], rtol=1e-6, atol=0) for k in mine)
        same_gan = torch.allclose(
            self.task.gan_loss.generator(self.task.adversarial_logits(d_fake)),
            self.gan_loss.generator(self.logits(d_fake)))
        return bool(same_inputs and same_losses and same_gan)


def _detach(output):
    if isinstance(output, torch.Tensor):
        return output.detach()
    return [_detach(o) for o in output]


def count_flops(loop: PlainLoop, batch: dict, train_generator: bool = True) -> dict:
    """FLOPs of one plain-loop batch: a D and a G step (or, train_generator False, D alone)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        loop.step(batch, train_generator=train_generator)
    by_op = {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return {"total": int(counter.get_total_flops()), "by_op": dict(sorted(by_op.items(), key=lambda kv: -kv[1]))}


def step_flops(loop: PlainLoop, batch: dict) -> dict:
    """`count_flops` of a D+G batch ("total"), and with n_critic > 1 also of a D-only batch
    and the mean per batch over a D/G cycle ("per_batch"; else the total)."""
    flops = count_flops(loop, batch)
    flops["per_batch"] = flops["total"]
    if loop.n_critic > 1:
        flops["d_only_total"] = count_flops(loop, batch, train_generator=False)["total"]
        flops["per_batch"] = ((loop.n_critic - 1) * flops["d_only_total"] + flops["total"]) / loop.n_critic
    return flops

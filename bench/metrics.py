"""Time of one pass of the generation metrics (FID, KID, IS, precision/recall) for the
1797 sklearn digits at 32x32, in two feature spaces, on this machine's CPU.

    python bench/metrics.py [--inception-images 128] [--threads N]

* classifier: `train_feature_classifier` on the digits (its time and held-out accuracy),
  then one pass: the features of 1797 real and 1797 fake images (the digits and noise),
  in batches of 256, and ``compute``; then a second compute with the reference kept
  (``reset_fake``, the fake set again), as a run that evaluates every N steps does.
* inception: a random-weight `InceptionFeatures` (299x299 resize). Its forward pass is
  timed on ``--inception-images`` digits and extrapolated to 2 x 1797 images (all 1797 are
  run when asked); ``compute`` is timed on 1797 + 1797 real-sized 2048-d feature vectors
  (the measured features, resampled with a little noise, when fewer images were run).

Each of compute's parts (FID, KID, IS, precision/recall) is timed on its own too.
``reference_points`` gives the scale of the classifier-space numbers: the metrics of the
even-indexed digits against the odd-indexed ones (two samples of the same distribution:
the floor a perfect generator of 898 images would reach) and of noise against the digits.
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from ganforge.metrics import GenerationMetrics, InceptionFeatures, train_feature_classifier
from ganforge.metrics.scores import Gaussian, frechet_distance, inception_score, kernel_distance, precision_recall


def seconds(function) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def parts(real: torch.Tensor, fake: torch.Tensor, logits: torch.Tensor) -> dict[str, float]:
    """Each metric's arithmetic on its own, in seconds."""
    return {
        "fid_s": seconds(lambda: frechet_distance(Gaussian.of(real), Gaussian.of(fake)))[0],
        "kid_s": seconds(lambda: kernel_distance(real, fake))[0],
        "is_s": seconds(lambda: inception_score(logits))[0],
        "precision_recall_s": seconds(lambda: precision_recall(real, fake))[0],
    }


def one_pass(metrics: GenerationMetrics, real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    def extract():
        for part in real.split(256):
            metrics.update_real(part)
        for part in fake.split(256):
            metrics.update_fake(part)

    extract_s, _ = seconds(extract)
    compute_s, values = seconds(metrics.compute)
    metrics.reset_fake()
    for part in fake.split(256):
        metrics.update_fake(part)
    cached_s, _ = seconds(metrics.compute)
    return {"extract_s": extract_s, "compute_s": compute_s, "compute_with_kept_reference_s": cached_s,
            "metrics": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inception-images", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_digits()
    grey = torch.tensor(data.images, dtype=torch.float32)[:, None] / 16
    real = F.interpolate(grey, size=(32, 32), mode="bilinear", align_corners=False).expand(-1, 3, -1, -1).contiguous()
    labels = torch.tensor(data.target)
    noise = torch.rand(real.shape, generator=torch.Generator().manual_seed(0))
    report = {"samples": len(real), "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
              "load_average_1min": os.getloadavg()[0], "torch": torch.__version__}

    train_s, classifier = seconds(lambda: train_feature_classifier(real, labels, seed=0))
    metrics = GenerationMetrics(classifier)
    report["classifier"] = {"train_s": train_s, "held_out_accuracy": classifier.held_out_accuracy,
                            **one_pass(metrics, real, noise)}
    with torch.no_grad():
        features_real, _ = classifier(real)
        features_fake, logits_fake = classifier(noise)
    report["classifier"]["parts"] = parts(features_real, features_fake, logits_fake)
    halves = GenerationMetrics(classifier)
    halves.update_real(real[0::2])
    halves.update_fake(real[1::2])
    report["reference_points"] = {"real_even_vs_odd": halves.compute(),
                                  "noise_vs_real": report["classifier"]["metrics"]}

    torch.manual_seed(0)
    inception = InceptionFeatures()  # random weights: the cost is the same as the real network's
    n = min(args.inception_images, len(real))
    with torch.no_grad():
        forward_s, (features, logits) = seconds(lambda: inception(real[:n]))
    per_image = forward_s / n
    if n < len(real):  # real-sized sets for the arithmetic: resampled features, jittered
        generator = torch.Generator().manual_seed(1)

        def resample(x):
            picks = torch.randint(n, (len(real),), generator=generator)
            return x[picks] + 0.01 * x.std() * torch.randn(len(real), x.shape[1], generator=generator)

        features_real, features_fake, logits_fake = resample(features), resample(features), resample(logits)
    else:
        features_real, features_fake, logits_fake = features, *inception(noise)
    metrics = GenerationMetrics(inception)
    metrics.update_real_features(features_real)
    metrics.update_fake_features(features_fake, logits_fake)
    compute_s, _ = seconds(metrics.compute)
    report["inception"] = {
        "images_run": n, "forward_s_per_image": per_image,
        "extract_s" + ("" if n == len(real) else "_extrapolated"): per_image * 2 * len(real),
        "compute_s": compute_s, "parts": parts(features_real, features_fake, logits_fake),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

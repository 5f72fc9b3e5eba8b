"""PyTorch side of the image-embedding benchmark (see benches/README.md).

Builds open_clip's ViT-B-16-SigLIP with random weights (nothing is downloaded), pins the thread
count, and times `encode_image` on preprocessed 224x224 batches under `torch.inference_mode()`.
Prints one JSON object on stdout; progress goes to stderr.

    python scripts/bench/torch_embed.py --threads 2 --batches 8,32 --min-seconds 10
"""

import argparse
import json
import platform
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, required=True, help="torch.set_num_threads (and interop threads)")
    ap.add_argument("--batches", default="8,32", help="comma-separated batch sizes")
    ap.add_argument("--min-seconds", type=float, default=10.0, help="time each batch size at least this long")
    ap.add_argument("--min-iters", type=int, default=3, help="and at least this many timed passes")
    ap.add_argument("--warmup", type=int, default=1, help="untimed passes per batch size")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(args.threads)
    except RuntimeError:
        pass  # already set by an earlier parallel region; it does not matter for encode_image
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16-SigLIP", pretrained=None)
    model.eval()
    size = model.visual.image_size if hasattr(model.visual, "image_size") else 224
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    params = sum(p.numel() for p in model.visual.parameters())

    results = []
    for batch in [int(b) for b in args.batches.split(",") if b]:
        x = torch.randn(batch, 3, size, size)
        with torch.inference_mode():
            for _ in range(args.warmup):
                model.encode_image(x, normalize=True)
            times = []
            start = time.perf_counter()
            while len(times) < args.min_iters or time.perf_counter() - start < args.min_seconds:
                t0 = time.perf_counter()
                model.encode_image(x, normalize=True)
                times.append(time.perf_counter() - t0)
        best = min(times)
        mean = sum(times) / len(times)
        results.append(
            {
                "batch": batch,
                "iters": len(times),
                "best_s": best,
                "mean_s": mean,
                "images_per_s": batch / mean,
                "images_per_s_best": batch / best,
            }
        )
        print(f"torch batch {batch}: {batch / mean:.2f} img/s over {len(times)} passes", file=sys.stderr)

    print(
        json.dumps(
            {
                "backend": "torch",
                "torch": torch.__version__,
                "open_clip": open_clip.__version__,
                "python": platform.python_version(),
                "threads": torch.get_num_threads(),
                "image_size": size,
                "vision_params": params,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()

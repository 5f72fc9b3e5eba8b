"""PyTorch side of the embedding benchmark (see benches/README.md).

Builds open_clip's ViT-B-16-SigLIP and, with --weights, loads the bench's own checkpoint into it (the
`model.safetensors` that `cargo bench --bench embed` writes, Marqo layout: `model.` + open_clip names),
so both sides run the very same weights. Pins the thread count and, under `torch.inference_mode()`,
times `encode_image` on preprocessed 224x224 batches, `encode_text` on 64-token batches, and one large
f32 matrix multiply (the machine's practical peak, as MKL reaches it). With --reference it also embeds
the bench's reference inputs (the same splitmix64 stream as benches/embed.rs) so the bench can report
the largest difference between the two sides' normalised embeddings. Prints one JSON object on stdout;
progress goes to stderr.

    python scripts/bench/torch_embed.py --threads 2 --weights target/fitcheck-bench/vit-b16-siglip-marqo
"""

import argparse
import json
import platform
import sys
import time

MASK = (1 << 64) - 1


class SplitMix64:
    """benches/embed.rs's `Rng`, bit for bit."""

    def __init__(self, seed: int) -> None:
        self.state = seed & MASK

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self, bound: float) -> float:
        # Exact in f32 as in Rust: a 24-bit fraction, doubled, minus one, times a power-of-two bound.
        unit = (self.next_u64() >> 40) / float(1 << 24)
        return (2.0 * unit - 1.0) * bound


def reference_inputs(size: int, context: int, vocab: int, images: int, texts: int):
    """The inputs `reference_inputs` in benches/embed.rs builds: pixels in [-1, 1), token ids < vocab."""
    rng = SplitMix64(0xF17C)
    pixels = [rng.uniform(1.0) for _ in range(images * 3 * size * size)]
    ids = [rng.next_u64() % vocab for _ in range(texts * context)]
    return pixels, ids


def time_passes(fn, min_seconds: float, min_iters: int, warmup: int):
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, required=True, help="torch.set_num_threads (and interop threads)")
    ap.add_argument("--batches", default="8,32", help="comma-separated image batch sizes")
    ap.add_argument("--text-batches", default="1,32", help="comma-separated text batch sizes (0: none)")
    ap.add_argument("--min-seconds", type=float, default=10.0, help="time each batch size at least this long")
    ap.add_argument("--min-iters", type=int, default=3, help="and at least this many timed passes")
    ap.add_argument("--warmup", type=int, default=1, help="untimed passes per batch size")
    ap.add_argument("--weights", help="the bench checkpoint directory (model.safetensors); random weights without")
    ap.add_argument("--reference", type=int, default=2, help="reference images and texts to embed (0: none)")
    ap.add_argument("--matmul", type=int, default=2048, help="size n of the n x n x n peak matmul (0: none)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(args.threads)
    except RuntimeError:
        pass  # already set by an earlier parallel region; it does not matter here
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16-SigLIP", pretrained=None)
    if args.weights:
        from safetensors.torch import load_file

        state = load_file(f"{args.weights}/model.safetensors")
        state = {k.removeprefix("model."): v.reshape(model.state_dict()[k.removeprefix("model.")].shape)
                 for k, v in state.items()}
        model.load_state_dict(state, strict=True)
    model.eval()
    size = model.visual.image_size if hasattr(model.visual, "image_size") else 224
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    context = model.context_length
    vocab = model.vocab_size
    params = sum(p.numel() for p in model.visual.parameters())

    def timed(kind, batch, fn):
        times = time_passes(fn, args.min_seconds, args.min_iters, args.warmup)
        mean = sum(times) / len(times)
        print(f"torch {kind} batch {batch}: {batch / mean:.2f}/s over {len(times)} passes", file=sys.stderr)
        return {"batch": batch, "iters": len(times), "best_s": min(times), "mean_s": mean,
                "per_s": batch / mean, "images_per_s": batch / mean}

    results, text_results = [], []
    with torch.inference_mode():
        for batch in [int(b) for b in args.batches.split(",") if b and int(b) > 0]:
            x = torch.randn(batch, 3, size, size)
            results.append(timed("image", batch, lambda: model.encode_image(x, normalize=True)))
        for batch in [int(b) for b in args.text_batches.split(",") if b and int(b) > 0]:
            ids = torch.randint(0, vocab, (batch, context))
            text_results.append(timed("text", batch, lambda: model.encode_text(ids, normalize=True)))

        reference = None
        if args.reference > 0:
            pixels, ids = reference_inputs(size, context, vocab, args.reference, args.reference)
            px = torch.tensor(pixels, dtype=torch.float32).reshape(args.reference, 3, size, size)
            tk = torch.tensor(ids, dtype=torch.long).reshape(args.reference, context)
            reference = {
                "image": model.encode_image(px, normalize=True).tolist(),
                "text": model.encode_text(tk, normalize=True).tolist(),
            }

        matmul = None
        if args.matmul > 0:
            n = args.matmul
            a, b = torch.randn(n, n), torch.randn(n, n)
            times = time_passes(lambda: torch.mm(a, b), min(args.min_seconds, 5.0), 3, 1)
            matmul = {"n": n, "gflops": 2 * n**3 / (sum(times) / len(times)) / 1e9}
            print(f"torch matmul {n}: {matmul['gflops']:.1f} GFLOP/s", file=sys.stderr)

    print(
        json.dumps(
            {
                "backend": "torch",
                "torch": torch.__version__,
                "open_clip": open_clip.__version__,
                "python": platform.python_version(),
                "threads": torch.get_num_threads(),
                "weights": "bench checkpoint" if args.weights else "random",
                "image_size": size,
                "context": context,
                "vision_params": params,
                "results": results,
                "text_results": text_results,
                "reference": reference,
                "matmul": matmul,
            }
        )
    )


if __name__ == "__main__":
    main()

"""A small CLIP-style byte-level BPE vocabulary, in the two forms CLIP checkpoints ship it.

CLIP's tokenizer (OpenAI's, kept as open_clip's `SimpleTokenizer`) maps UTF-8 bytes to printable characters,
marks the last character of every word with `</w>`, and merges pairs by rank. Its vocabulary is fixed by the
merges file alone: 256 byte characters, the same 256 with `</w>`, one entry per merge, then the start and end
tokens, so the end-of-text token has the highest id (which CLIP's argmax pooling relies on).

The real merges file has 48,894 merges (a 49,408-entry vocabulary); the fixtures and the lookbook model learn a
few hundred from their own words instead, which keeps the files small and exercises the same code paths. This
module writes:

- `merges_gz(path)`: the gzipped merges file `open_clip.tokenizer.SimpleTokenizer(bpe_path=...)` reads
  (a header line, then one merge per line; no trailing newline, which SimpleTokenizer would read as a merge);
- `tokenizer_json(...)`: the `tokenizers` pipeline transformers builds for a CLIP repository
  (`CLIPTokenizerFast`): NFC, white space runs to one space, lower case; CLIP's word-splitting pattern, then
  byte-level mapping; BPE with the `</w>` suffix; `<|startoftext|>` ... `<|endoftext|>` around each text.
"""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

from open_clip.tokenizer import bytes_to_unicode

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
# open_clip's SimpleTokenizer names the same two tokens differently; the ids are the same.
OPEN_CLIP_SPECIALS = ["<start_of_text>", "<end_of_text>"]
SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def _symbols(word: str) -> tuple[str, ...]:
    be = bytes_to_unicode()
    chars = [be[b] for b in word.encode("utf-8")]
    return tuple(chars[:-1]) + (chars[-1] + "</w>",)


def learn_merges(words: Counter, max_merges: int) -> list[tuple[str, str]]:
    """Greedy BPE on `words` (word -> count): the most frequent adjacent pair first, ties broken by the pair
    itself so the result is deterministic. A merge whose joined string is already a vocabulary entry is
    skipped (SimpleTokenizer's vocabulary must not repeat an entry)."""
    be = bytes_to_unicode()
    known = set(be.values()) | {v + "</w>" for v in be.values()}
    seqs = {w: list(_symbols(w)) for w in words if w}
    merges: list[tuple[str, str]] = []
    banned: set[tuple[str, str]] = set()
    while len(merges) < max_merges:
        pairs: Counter = Counter()
        for w, s in seqs.items():
            for a, b in zip(s, s[1:]):
                if (a, b) not in banned:
                    pairs[(a, b)] += words[w]
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if best[0] + best[1] in known:
            banned.add(best)
            continue
        merges.append(best)
        known.add(best[0] + best[1])
        for w, s in seqs.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return merges


def vocabulary(merges: list[tuple[str, str]], specials: list[str]) -> list[str]:
    """The vocabulary in id order, as SimpleTokenizer builds it."""
    base = list(bytes_to_unicode().values())
    return base + [v + "</w>" for v in base] + ["".join(m) for m in merges] + specials


def merges_gz(merges: list[tuple[str, str]], path: Path) -> None:
    text = "#version: 0.2 (fitcheck)\n" + "\n".join(f"{a} {b}" for a, b in merges)
    # mtime 0: the same merges give the same bytes.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(text.encode("utf-8"))


def tokenizer_json(merges: list[tuple[str, str]]):
    """A `tokenizers.Tokenizer` configured as transformers configures a CLIP repository's tokenizer.json."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE

    vocab = {t: i for i, t in enumerate(vocabulary(merges, [BOS, EOS]))}
    tok = Tokenizer(BPE(vocab=vocab, merges=merges, dropout=None, continuing_subword_prefix="",
                        end_of_word_suffix="</w>", fuse_unk=False, unk_token=EOS))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                           normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.RobertaProcessing((EOS, vocab[EOS]), (BOS, vocab[BOS]), trim_offsets=False,
                                                      add_prefix_space=False)
    tok.add_special_tokens([AddedToken(BOS, special=True, normalized=True),
                            AddedToken(EOS, special=True, normalized=False)])
    return tok


def hf_tokenizer_files(context: int) -> dict[str, dict]:
    """tokenizer_config.json and special_tokens_map.json as a CLIP repository has them (pad = `<|endoftext|>`)."""
    tokens = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    return {
        "tokenizer_config.json": {"tokenizer_class": "CLIPTokenizer", "model_max_length": context,
                                  "do_lower_case": True, "errors": "replace", **tokens},
        "special_tokens_map.json": tokens,
    }

"""An offline tokenizer for the tiny models: byte-level BPE trained locally with ``tokenizers``.

The pre-tokenisation (NFC, Qwen's split pattern, byte-level alphabet) is the one transformers'
``Qwen2Tokenizer`` builds, so the trained vocabulary and merges load back as a ``Qwen2Tokenizer``
exactly like a released Qwen checkpoint's. The family's special tokens are added after the BPE
vocabulary, in the family's order, so their ids follow the vocabulary as they do in Qwen.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    trainers,
)

from hieroaction.models.families import ModelFamily, _read_data


def corpus_lines(extra: Iterable[str] = ()) -> list[str]:
    """The built-in training text: ``tiny_corpus.txt`` plus every built-in domain's description,
    components and label vocabularies, plus ``extra`` lines."""
    from hieroaction.domains import builtin_domain_names, get_domain

    lines = [
        line
        for line in _read_data("tiny_corpus.txt").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for name in builtin_domain_names():
        domain = get_domain(name)
        lines.append(domain.description)
        lines.extend(
            " ".join(group)
            for group in (domain.components, domain.action_labels, domain.step_labels)
            if group
        )
    lines.extend(extra)
    return lines


def _qwen_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    # Same pattern as transformers' Qwen2Tokenizer, so a reload as Qwen2Tokenizer is exact.
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def train_bpe(lines: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    """Train a byte-level BPE (no special tokens yet) on ``lines``.

    The vocabulary holds the 256 byte symbols plus as many merges as the text supports, up to
    ``vocab_size`` entries.
    """
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = _qwen_pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tok.train_from_iterator(list(lines), trainer=trainer)
    return tok


def build_tokenizer(family: ModelFamily, vocab_size: int, extra_lines: Iterable[str] = ()):
    """A transformers ``Qwen2Tokenizer`` with a locally trained vocabulary, the family's special
    tokens and its chat template."""
    from transformers import Qwen2Tokenizer

    bpe = train_bpe(corpus_lines(extra_lines), vocab_size=vocab_size)
    model = bpe.get_vocab(with_added_tokens=False)
    vocab = dict(sorted(model.items(), key=lambda kv: kv[1]))
    merges = _merges_of(bpe)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token=family.eos_tokens[0],
        pad_token=family.pad_token,
        bos_token=None,
    )
    tokenizer.add_tokens(
        [AddedToken(t, special=True, normalized=False) for t in family.special_tokens],
        special_tokens=True,
    )
    tokenizer.add_tokens(
        [AddedToken(t, special=False, normalized=False) for t in family.text_tokens]
    )
    tokenizer.chat_template = family.chat_template
    return tokenizer


def _merges_of(tok: Tokenizer) -> list[tuple[str, str]]:
    import json

    raw = json.loads(tok.to_str())["model"]["merges"]
    # tokenizers writes merges as "a b" strings or as [a, b] pairs depending on its version.
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in raw]

"""The paper's two pretrained parts, in miniature: a CTC-fine-tuned upstream and a pre-trained LLM.

The paper's stage 1 learns ASR in a few epochs because both ends of the model are pretrained:
``facebook/hubert-large-ls960-ft`` is HuBERT fine-tuned for ASR with CTC on LibriSpeech (its upper
layers are nearly character posteriors), and Llama-3.1-8B-Instruct already knows the language, so
the adapters only have to teach the LLM to *read* the speech.  The tiny random stand-ins of
``sedtk model init-tiny`` know neither.  This module trains small analogues of both, written with
``save_pretrained`` so that every later step (``sedtk feats dump``, ``sedtk train``, ``sedtk
decode``) loads them exactly as it loads the real checkpoints:

* :func:`finetune_ctc` -- the analogue of ``hubert-large-ls960-ft``: a ``HubertForCTC`` built on a
  HuBERT checkpoint (the tiny random one), trained with character CTC on the transcripts of a data
  dir, saved with its feature extractor and a ``Wav2Vec2CTCTokenizer`` (the layout of the real
  checkpoint; ``sedtk feats dump`` reads its hidden states, the CTC head is unused there).  Unlike
  the real model it has no self-supervised pre-training: it starts from random weights.
* :func:`pretrain_lm` -- the analogue of Llama's pre-training: the causal LM (the tiny random Llama)
  trained on plain text (next-token cross-entropy), saved with its tokenizer and chat template.
  :func:`grammar_lm_text` makes the text for the synthetic corpus: sentences of its grammar (never
  a dev or test sentence) and descriptions of how speech sounds, as written by the caption
  vocabulary; an LLM that knows English knows both kinds of sentence.

Both hold out a dev set and log its loss (and the CTC model's greedy word error rate), write a
``pretrain.json`` with the settings and the measurements beside the weights, and write the output
folder atomically (``OUT.partial`` then a rename).  An interrupted run resumes from its last
finished epoch (``OUT.partial/state.pt``, kept only while the settings are the same).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from sedtk.errors import CheckpointError, DataDirError, OptionError
from sedtk.utils.io import write_json

log = logging.getLogger(__name__)

#: The CTC labels' blank / padding token and word delimiter (Wav2Vec2CTCTokenizer's conventions).
PAD, UNK, WORD_DELIMITER = "<pad>", "<unk>", "|"


# ----------------------------------------------------------------------------- shared loop


@dataclass
class PretrainSettings:
    """One training run of this module (written into ``pretrain.json``)."""

    epochs: int = 10
    batch_size: int = 16
    lr: float = 2e-3
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 0


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _schedule(optimizer, total: int, warmup_ratio: float):
    warmup = max(1, round(total * warmup_ratio))

    def factor(step: int) -> float:  # linear warm-up, then cosine decay to 0
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _run(
    model: nn.Module,
    out: Path,
    settings: PretrainSettings,
    identity: dict,
    batches: Callable[[random.Random], list],
    loss_of: Callable[[nn.Module, object], torch.Tensor],
    evaluate: Callable[[nn.Module], dict],
    save: Callable[[nn.Module, Path], None],
) -> dict:
    """Train ``model`` for ``settings.epochs`` over ``batches(rng)`` (one list per epoch), resumably.

    ``identity`` (inputs and settings) decides whether a partial run may be resumed.  Returns the
    measurements written into ``OUT/pretrain.json``.
    """
    partial = out.with_name(out.name + ".partial")
    key = _digest(identity)
    state_path = partial / "state.pt"
    rng = random.Random(settings.seed)
    torch.manual_seed(settings.seed)
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
    other = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": other, "weight_decay": 0.0}],
        lr=settings.lr,
    )
    steps_per_epoch = len(batches(random.Random(settings.seed)))
    if steps_per_epoch == 0:
        raise OptionError("pretraining: no training batch (empty training set?)")
    scheduler = _schedule(optimizer, steps_per_epoch * settings.epochs, settings.warmup_ratio)
    history: list[dict] = []
    epoch0 = 0
    if state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        if state.get("key") == key:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            rng.setstate(state["rng"])
            torch.set_rng_state(state["torch_rng"])
            epoch0, history = state["epoch"], state["history"]
            log.info("resuming %s after epoch %d of %d", out, epoch0, settings.epochs)
        else:
            log.info("%s holds a run of other settings or inputs: starting afresh", partial)
    if epoch0 == 0 and partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for epoch in range(epoch0, settings.epochs):
        model.train()
        total, count = 0.0, 0
        for batch in batches(rng):
            loss = loss_of(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.max_grad_norm > 0:
                nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            total += float(loss.detach())
            count += 1
        model.eval()
        with torch.no_grad():
            metrics = {"epoch": epoch + 1, "train_loss": round(total / max(count, 1), 4), **evaluate(model)}
        history.append(metrics)
        shown = ", ".join(f"{k} {v}" for k, v in metrics.items() if k != "epoch")
        log.info("epoch %d/%d: %s (%.0f s)", epoch + 1, settings.epochs, shown, time.perf_counter() - t0)
        tmp = state_path.with_name("state.pt.tmp")
        torch.save(
            {"key": key, "epoch": epoch + 1, "history": history, "model": model.state_dict(),
             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng.getstate(),
             "torch_rng": torch.get_rng_state()},
            tmp,
        )  # fmt: skip
        os.replace(tmp, state_path)
    state_path.unlink(missing_ok=True)
    save(model, partial)
    result = {**identity, "history": history, "final": history[-1] if history else {}}
    write_json(partial / "pretrain.json", result)
    if out.exists():
        shutil.rmtree(out)
    os.replace(partial, out)
    return result


# ----------------------------------------------------------------------------- the LLM (Llama's pre-training)


def grammar_lm_text(num_sentences: int = 6000, num_descriptions: int = 2000, seed: int = 0) -> list[str]:
    """Plain text for pre-training the demo's tiny LLM (shuffled, deterministic for a seed).

    ``num_sentences`` sentences of the synthetic corpus's grammar (:func:`sedtk.data.synth.
    grammar_sentences`: never a dev or test sentence) and ``num_descriptions`` descriptions of how
    speech sounds (:func:`sedtk.data.attributes.caption` over random attribute values and the
    corpus's emotion words, without the task's ``Emotion: X.`` suffix).
    """
    from sedtk.data.attributes import caption
    from sedtk.data.emotions import label_word
    from sedtk.data.synth import EMOTIONS, grammar_sentences

    rng = random.Random(f"sedtk-lm-text:{seed}")
    lines = grammar_sentences(num_sentences, seed=f"lm:{seed}")
    levels = ("low", "normal", "high")
    for _ in range(num_descriptions):
        attrs = {
            "gender": rng.choice(("male", "female")),
            "pitch": rng.choice(levels),
            "volume": rng.choice(levels),
            "speed": rng.choice(("slow", "normal", "fast")),
            "pitch_range": rng.choice(("narrow", "normal", "wide")),
        }
        lines.append(caption(attrs, None, label_word(rng.choice(EMOTIONS)), rng, with_range=True))
    rng.shuffle(lines)
    return lines


def _lm_dev_text() -> list[str]:
    """The dev split's sentences of the synthetic corpus: never in :func:`grammar_lm_text`."""
    from sedtk.data.synth import DEV_SENTENCES, SENTENCES

    return [SENTENCES[i] for i in DEV_SENTENCES]


def pretrain_lm(
    llm: str | os.PathLike,
    out: str | os.PathLike,
    texts: Sequence[str],
    dev_texts: Sequence[str] = (),
    settings: PretrainSettings | None = None,
) -> dict:
    """Pre-train the causal LM at ``llm`` on ``texts`` (one document each) and save it to ``out``.

    Each text is ``<bos> text <eos>`` (the tokenizer's own tokens; ``<eos>`` is the end-of-turn token
    that ends every answer of the speech tasks).  The mean next-token loss of ``dev_texts`` is logged
    per epoch.  Returns the measurements (also in ``OUT/pretrain.json``).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = settings or PretrainSettings()
    out = Path(out)
    if not texts:
        raise OptionError("pretrain_lm: no training text")
    tokenizer = AutoTokenizer.from_pretrained(str(llm))
    model = AutoModelForCausalLM.from_pretrained(str(llm), dtype=torch.float32)
    eos = tokenizer.eos_token_id
    if eos is None:
        raise CheckpointError(f"{llm}: the tokenizer has no eos token")

    def encode(t: str) -> list[int]:
        return tokenizer(t)["input_ids"] + [eos]  # the tokenizer adds <bos>

    train_ids = [encode(t) for t in texts]
    dev_ids = [encode(t) for t in dev_texts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos

    def collate(seqs: list[list[int]]):
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        labels = torch.full((len(seqs), width), -100, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            labels[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        return ids, mask, labels

    def batches(rng: random.Random) -> list:
        order = list(range(len(train_ids)))
        rng.shuffle(order)
        b = settings.batch_size
        return [collate([train_ids[i] for i in order[j : j + b]]) for j in range(0, len(order), b)]

    def loss_of(m, batch) -> torch.Tensor:
        ids, mask, labels = batch
        return m(input_ids=ids, attention_mask=mask, labels=labels).loss

    def evaluate(m) -> dict:
        if not dev_ids:
            return {}
        total, n = 0.0, 0
        for j in range(0, len(dev_ids), 64):
            ids, mask, labels = collate(dev_ids[j : j + 64])
            k = int((labels[:, 1:] != -100).sum())
            total += float(m(input_ids=ids, attention_mask=mask, labels=labels).loss) * k
            n += k
        return {"dev_loss": round(total / n, 4)}

    def save(m, path: Path) -> None:
        m.save_pretrained(path)
        tokenizer.save_pretrained(path)

    identity = {
        "kind": "lm",
        "base": str(llm),
        "base_config": _digest(model.config.to_diff_dict()),
        "texts": len(train_ids),
        "text_digest": _digest(list(texts)),
        "dev_texts": len(dev_ids),
        "tokens": sum(len(s) for s in train_ids),
        "settings": asdict(settings),
    }
    log.info("pre-training %s as a language model on %d texts (%d tokens), dev %d texts",
             llm, len(train_ids), identity["tokens"], len(dev_ids))  # fmt: skip
    return _run(model, out, settings, identity, batches, loss_of, evaluate, save)


def pretrain_grammar_lm(
    llm: str | os.PathLike,
    out: str | os.PathLike,
    num_sentences: int = 6000,
    num_descriptions: int = 2000,
    settings: PretrainSettings | None = None,
) -> dict:
    """:func:`pretrain_lm` on :func:`grammar_lm_text`, the dev split's sentences as its dev text."""
    seed = (settings or PretrainSettings()).seed
    texts = grammar_lm_text(num_sentences, num_descriptions, seed)
    return pretrain_lm(llm, out, texts, _lm_dev_text(), settings)


# ----------------------------------------------------------------------------- the upstream (ls960-ft)


CTC_UNITS = ("chars", "words")


def _words(text: str) -> list[str]:
    """Lower-case words of a transcript (letters, digits and apostrophes)."""
    return "".join(c if c.isalnum() or c == "'" else " " for c in text.lower()).split()


def ctc_units(text: str, units: str = "chars") -> list[str]:
    """The labels CTC is trained on: characters with ``|`` between words, or whole words."""
    if units == "words":
        return _words(text)
    return list(WORD_DELIMITER.join(_words(text)))


def ctc_vocab(texts: Sequence[str], units: str = "chars") -> dict[str, int]:
    """CTC labels of ``texts``: blank/pad 0, unk 1, (the word delimiter ``|`` 2 for characters), then
    the sorted characters or words."""
    if units not in CTC_UNITS:
        raise OptionError(f"CTC units {units!r}: use one of {', '.join(CTC_UNITS)}")
    labels = sorted({u for t in texts for u in ctc_units(t, units)} - {WORD_DELIMITER})
    head = [PAD, UNK] + ([WORD_DELIMITER] if units == "chars" else [])
    return {u: i for i, u in enumerate(head + labels)}


def ctc_greedy(logits: torch.Tensor, lengths: torch.Tensor, vocab: dict[str, int]) -> list[str]:
    """Best-path CTC decoding of ``(B, T, V)`` logits into words separated by spaces."""
    labels = {i: u for u, i in vocab.items()}
    chars = WORD_DELIMITER in vocab
    out = []
    for row, n in zip(logits.argmax(-1), lengths, strict=True):
        ids = torch.unique_consecutive(row[: int(n)]).tolist()
        units = [labels[i] for i in ids if i not in (vocab[PAD], vocab[UNK])]
        if chars:
            out.append(" ".join(w for w in "".join(units).split(WORD_DELIMITER) if w))
        else:
            out.append(" ".join(units))
    return out


def _word_errors(refs: Sequence[str], hyps: Sequence[str]) -> float:
    import jiwer

    refs = [" ".join(_words(r)) for r in refs]
    return 100.0 * jiwer.wer(refs, [h if h else "<empty>" for h in hyps])


def _load_split(data, what: str) -> tuple[list[str], list[torch.Tensor], list[str]]:
    """Keys, waveforms (16 kHz float32) and transcripts of a data dir, in memory."""
    from sedtk.data.audio import load_utterance
    from sedtk.data.datadir import DataDir

    data = data if isinstance(data, DataDir) else DataDir.load(data)
    if "text" not in data.maps:
        raise DataDirError(f"{data.path}: no text file; CTC fine-tuning needs transcripts ({what})")
    keys = [k for k in data.utts if data.maps["text"].get(k, "").strip()]
    if len(keys) < len(data):
        log.warning("%s: %d of %d utterances have no transcript and are left out (%s)",
                    data.path, len(data) - len(keys), len(data), what)  # fmt: skip
    wavs = [torch.as_tensor(load_utterance(data.utterance(k))).float() for k in keys]
    return keys, wavs, [data.maps["text"][k] for k in keys]


def finetune_ctc(
    upstream: str | os.PathLike,
    train,
    out: str | os.PathLike,
    dev=None,
    settings: PretrainSettings | None = None,
    mask_time_prob: float = 0.0,
    units: str = "chars",
) -> dict:
    """Fine-tune the HuBERT-style checkpoint ``upstream`` for character CTC on ``train`` (a data dir).

    The result is a ``HubertForCTC`` (or the matching ``*ForCTC`` class of the checkpoint's model
    type) in ``out`` with its feature extractor, ``vocab.json`` and a ``Wav2Vec2CTCTokenizer``:
    the layout of ``facebook/hubert-large-ls960-ft``, so :func:`sedtk.features.upstream.load_upstream`
    loads its encoder as it loads the real checkpoint.  ``mask_time_prob``: SpecAugment-style time
    masking of the CNN features while training (as in HuBERT's CTC fine-tuning).  The dev set's CTC
    loss and greedy word error rate are logged per epoch.
    """
    from transformers import (
        AutoConfig,
        AutoFeatureExtractor,
        AutoModelForCTC,
        Wav2Vec2CTCTokenizer,
    )

    if units not in CTC_UNITS:
        raise OptionError(f"CTC units {units!r}: use one of {', '.join(CTC_UNITS)}")
    settings = settings or PretrainSettings()
    out = Path(out)
    train_keys, train_wavs, train_text = _load_split(train, "train")
    dev_keys, dev_wavs, dev_text = _load_split(dev, "dev") if dev is not None else ([], [], [])
    if not train_keys:
        raise DataDirError(f"{train}: no utterance with a transcript")
    vocab = ctc_vocab(train_text, units)
    config = AutoConfig.from_pretrained(str(upstream))
    if not hasattr(config, "conv_stride"):
        raise CheckpointError(f"{upstream}: not a wav2vec2-style speech model (HuBERT, WavLM, wav2vec 2.0)")
    config.update(
        {
            "vocab_size": len(vocab),
            "pad_token_id": vocab[PAD],
            "ctc_loss_reduction": "mean",
            "ctc_zero_infinity": True,
            "mask_time_prob": mask_time_prob,
            "mask_time_length": 5,
            "architectures": None,
        }
    )
    torch.manual_seed(settings.seed)
    model = AutoModelForCTC.from_pretrained(str(upstream), config=config, dtype=torch.float32)
    feature_extractor = AutoFeatureExtractor.from_pretrained(str(upstream))
    labels = [[vocab.get(u, vocab[UNK]) for u in ctc_units(t, units)] for t in train_text]
    dev_labels = [[vocab.get(u, vocab[UNK]) for u in ctc_units(t, units)] for t in dev_text]

    def collate(wavs: list[torch.Tensor], labs: list[list[int]] | None):
        inputs = feature_extractor(
            [w.numpy() for w in wavs], sampling_rate=16000, padding=True, return_attention_mask=True,
            return_tensors="pt",
        )  # fmt: skip
        lab = None
        if labs is not None:
            width = max(len(x) for x in labs)
            lab = torch.full((len(labs), width), -100, dtype=torch.long)
            for i, x in enumerate(labs):
                lab[i, : len(x)] = torch.tensor(x)
        return inputs["input_values"], inputs["attention_mask"], lab

    def batches(rng: random.Random) -> list:
        # similar lengths together (less padding), batches in random order
        order = sorted(range(len(train_wavs)), key=lambda i: (train_wavs[i].numel(), rng.random()))
        b = settings.batch_size
        groups = [order[j : j + b] for j in range(0, len(order), b)]
        rng.shuffle(groups)
        return [_LazyBatch(g) for g in groups]

    class _LazyBatch:  # collated when used: the epoch's batches are not all held in memory
        def __init__(self, idx):
            self.idx = idx

    def loss_of(m, batch) -> torch.Tensor:
        values, mask, lab = collate([train_wavs[i] for i in batch.idx], [labels[i] for i in batch.idx])
        return m(values, attention_mask=mask, labels=lab).loss

    def evaluate(m) -> dict:
        if not dev_wavs:
            return {}
        hyps, total, n = [], 0.0, 0
        for j in range(0, len(dev_wavs), 16):
            values, mask, lab = collate(dev_wavs[j : j + 16], dev_labels[j : j + 16])
            res = m(values, attention_mask=mask, labels=lab)
            total += float(res.loss) * len(lab)
            n += len(lab)
            lengths = m._get_feat_extract_output_lengths(mask.sum(-1))
            hyps += ctc_greedy(res.logits, lengths, vocab)
        return {"dev_loss": round(total / n, 4), "dev_wer": round(_word_errors(dev_text, hyps), 2)}

    def save(m, path: Path) -> None:
        m.config.architectures = [type(m).__name__]
        m.save_pretrained(path)
        feature_extractor.save_pretrained(path)
        vocab_file = path / "vocab.json"
        vocab_file.write_text(json.dumps(vocab, indent=1) + "\n", encoding="utf-8")
        if units == "chars":  # a tokenizer of characters, as the real checkpoint's
            Wav2Vec2CTCTokenizer(
                str(vocab_file), pad_token=PAD, unk_token=UNK, word_delimiter_token=WORD_DELIMITER
            ).save_pretrained(path)

    identity = {
        "kind": "ctc",
        "base": str(upstream),
        "base_config": _digest(config.to_diff_dict()),
        "train": str(getattr(train, "path", train)),
        "train_utts": len(train_keys),
        "train_digest": _digest([train_keys, train_text, [w.numel() for w in train_wavs]]),
        "dev_utts": len(dev_keys),
        "units": units,
        "vocab": vocab,
        "mask_time_prob": mask_time_prob,
        "settings": asdict(settings),
    }
    hours = sum(w.numel() for w in train_wavs) / 16000 / 3600
    log.info("CTC fine-tuning %s on %d utterances (%.2f h), %d CTC labels (%s), dev %d utterances",
             upstream, len(train_keys), hours, len(vocab), units, len(dev_keys))  # fmt: skip
    return _run(model, out, settings, identity, batches, loss_of, evaluate, save)

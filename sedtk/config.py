"""Typed training configuration: YAML -> dataclasses, with ``base:`` inheritance and ``--set`` overrides.

A config file has four sections, ``model``, ``prompt``, ``data`` and ``train`` (see
``docs/training.md`` for every key).  Rules:

* an unknown key is an error naming the key and its section; a value of the wrong type is an error
  naming the key;
* ``base: other.yaml`` inherits from another file (resolved relative to the including file), or
  ``base: paper/sys7_stage1`` from the configs packaged in ``sedtk/conf/paper/``; sections are merged
  key by key, lists are replaced;
* ``--set train.lr=1e-4`` overrides one key; the value is parsed as YAML and then type-checked;
* mapping-valued keys (``prompt.instructions``, ``prompt.targets``) add to their defaults key by key;
* floats may be written ``1e-4`` (YAML 1.1 reads that as a string; it is converted).

The fully resolved config (no ``base:``) is written as ``EXP/config.yaml``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sedtk.errors import ConfigError  # noqa: F401  (re-exported: a SedtkError)

# ----------------------------------------------------------------------------- prompt defaults (Sec. 3.4)
# The chat prompt of Figure 1 and the answer formats; sedtk.models.prompt assembles them.

SYSTEM_PROMPT = "You are a helpful language and speech assistant."
#: "Today Date" of Llama-3.1-style chat templates: fixed, Llama-3.1-Instruct's own default.
DATE_STRING = "26 Jul 2024"
TASKS = ("asr", "ser_sed", "ser")
DEFAULT_INSTRUCTIONS: dict[str, str] = {
    "ser_sed": (
        "Please caption the input audio according to content and speech descriptor-related information."
    ),
    "asr": "Please transcribe the speech content.",
    "ser": "Please recognise the emotion of the speaker.",
}
DEFAULT_TARGETS: dict[str, str] = {
    "asr": "{text}",
    "ser_sed": "{description} Emotion: {emotion}.",
    "ser": "Emotion: {emotion}.",
}

PACKAGED_CONF = Path(__file__).resolve().parent / "conf"


@dataclass
class LoraConfig:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class SslSerConfig:
    """The SSL-based SER baseline (Tab. 2 Sys. 1-3; ``model.kind: ssl_ser``), see ``sedtk.models.ssl_ser``."""

    projector_dim: int = 256  # s3prl emotion downstream's projector width before mean pooling
    ctc_weight: float = 0.1  # lambda in loss = CE + lambda * CTC (Cai et al. 2021, the paper's [46])
    finetune_upstream: bool = False  # train the upstream too (online features only)
    labels: list[str] | None = None  # emotion classes (filled from the training data when built)
    vocab: list[str] | None = None  # CTC characters (filled from the training transcripts when built)


@dataclass
class ModelConfig:
    """The network (paper Sec. 3, Figure 1)."""

    kind: str = "llm"  # llm: the paper's LLM model (SEDModel) | ssl_ser: the SSL SER baseline
    ssl_ser: SslSerConfig = field(default_factory=SslSerConfig)
    upstream: str = "facebook/hubert-large-ls960-ft"  # SSL encoder (hub id, local path, or "fbank")
    upstream_layers: list[int] | None = None  # hidden states the upstream supplies (None: all; from the dump)
    llm: str = "meta-llama/Llama-3.1-8B-Instruct"
    llm_mode: str = "lora"  # lora | full | frozen
    llm_quant: str = "none"  # none | 8bit | 4bit: bitsandbytes base weights (QLoRA; CUDA + bitsandbytes)
    lora: LoraConfig = field(default_factory=LoraConfig)
    dtype: str = "bfloat16"  # LLM weights; the speech branches always run in float32
    upstream_dtype: str = "auto"  # online upstream only; auto: bfloat16 on CUDA, float32 on the CPU
    gradient_checkpointing: bool = False
    attn_implementation: str | None = None  # e.g. sdpa, flash_attention_2; None = transformers' default
    feature_disentanglement: bool = True  # False: weighted sum -> adapter, no VIB (Tab. 2 Sys. 4)
    layers: list[int] | None = None  # input layers (indices into the supplied L) both weighted sums mix
    layer_norm: bool = False  # normalise every layer before the weighted sum (s3prl option)
    encoder_dim: int = 1024  # width of the Linear-GELU-Linear-GELU encoder
    latent_dim: int = 512  # size of z
    sigma_floor: float = 1e-5
    downsample: int = 5  # frames stacked per LLM token (LLaMA-Omni)
    adapter_dim: int = 2048  # hidden width of the Linear-ReLU-Linear adapter
    num_layers: int | None = None  # filled from the features (dump meta or upstream); checked if set
    feature_dim: int | None = None  # likewise


@dataclass
class PromptConfig:
    """Chat prompt and answer formats (Sec. 3.4); see ``sedtk.models.prompt``."""

    system: str = SYSTEM_PROMPT
    instructions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_INSTRUCTIONS))
    targets: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TARGETS))
    date_string: str = DATE_STRING  # "Today Date" of Llama-3.1-style templates: fixed, never today's
    #: the label inventory an instruction's ``{emotions}`` names (filled by training from the data)
    emotions: list[str] | None = None


@dataclass
class DataConfig:
    online_features: bool = False  # True: run model.upstream on the audio; False: read a feature dump
    num_workers: int = 2
    bucket_by_length: bool = True  # batch utterances of similar length together (less padding)
    bucket_batches: int = 50  # batches per sorting pool when bucketing
    max_duration: float = 30.0  # seconds; longer utterances are skipped (counted and logged)
    # largest share of a data dir's utterances a task may lose (no features, stale features, missing
    # field, label outside the inventory, unreadable audio) before training refuses to start
    max_drop: float = 0.01
    # share (0-1) of an epoch's training examples that may fail to load while training (each skipped,
    # counted and logged with its key and reason) before the run stops
    max_failed_share: float = 0.01


@dataclass
class BetaConfig:
    """KL weights of the VIB (Eq. 2) per branch; paper's best: 1e-4 (Tab. 3 Sys. 4)."""

    content: float = 1e-4
    descriptor: float = 1e-4
    warmup_steps: int = 0  # linear warm-up of beta from 0 over this many optimizer steps (0: constant)


@dataclass
class TrainConfig:
    """One training run (a stage of Sec. 3.5, or a one-stage joint run)."""

    stage: str = "stage1"  # a name recorded in the checkpoint metadata
    tasks: list[str] = field(default_factory=lambda: ["asr"])  # alternated in this order
    alternate_every: int = 1  # batches of one task before switching to the next
    train_branches: list[str] = field(default_factory=lambda: ["content"])  # content / descriptor
    train_llm: bool = True  # train the LLM (its LoRA adapters in lora mode)
    descriptor_input: str = "zeros"  # zeros | omit | features: what fills the <Speech descriptor> slot
    epochs: int = 4
    max_steps: int = 0  # stop after this many optimizer steps (0: run all epochs)
    batch_size: int = 8  # per process
    grad_accum: int = 1
    # true: batch_size x grad_accum is the global batch whatever the number of processes (per-process
    # batch and accumulation derived); false: batch_size is per process (global = x processes)
    keep_global_batch: bool = True
    # false only: the lr for a global batch of batch_size x grad_accum x processes (docs/training.md):
    # sqrt (lr x sqrt(processes), the square-root rule for Adam) | linear | none
    lr_scaling: str = "sqrt"
    lr: float = 2e-4
    scheduler: str = "constant"  # constant | cosine (both after a linear warm-up)
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    adam_eps: float = 1e-8
    max_grad_norm: float = 1.0  # 0 disables clipping
    seed: int = 0
    log_every: int = 10  # optimizer steps
    save_every_minutes: float = 30.0  # wall time between 'last' checkpoints (and at every epoch end); 0: off
    save_every: int = 0  # optimizer steps between 'last' checkpoints as well (0: by wall time only)
    eval_every: int = 0  # optimizer steps between dev evaluations (0: at every epoch end only)
    dev_ua: bool = True  # dev UA by constrained label scoring when the stage has an emotion task
    dev_max_utts: int = 500  # dev UA and CE on a stratified sample of N (fixed seed); 0: the whole dev set
    dev_max_new_tokens: int = 128  # generation length for the description before the label
    dev_batch_size: int = 8  # utterances per process and forward in dev evaluation (the decode batch)
    tf32: bool = True  # CUDA: float32 matmuls on TF32 tensor cores
    beta: BetaConfig = field(default_factory=BetaConfig)
    # Eq. 2 / 4 weighting: tokens = per example summed answer CE + beta x KL summed over frames x dims,
    # batch total / answer tokens (paper, default); mean = per-token mean CE + beta x per-frame mean KL
    loss_normalization: str = "tokens"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    deterministic: bool = False  # torch.use_deterministic_algorithms + cuDNN flags + CUBLAS_WORKSPACE_CONFIG


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


CHOICES: dict[str, tuple[str, ...]] = {
    "model.kind": ("llm", "ssl_ser"),
    "model.llm_mode": ("lora", "full", "frozen"),
    "model.llm_quant": ("none", "8bit", "4bit"),
    "model.dtype": ("bfloat16", "float16", "float32"),
    "model.upstream_dtype": ("auto", "bfloat16", "float16", "float32"),
    "train.descriptor_input": ("zeros", "omit", "features"),
    "train.scheduler": ("constant", "cosine"),
    "train.loss_normalization": ("tokens", "mean"),
    "train.lr_scaling": ("sqrt", "linear", "none"),
}


# ----------------------------------------------------------------------------- typed conversion


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a section (mapping), got {value!r}")
        return from_dict(tp, value, key)
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        kt, vt = typing.get_args(tp)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {_convert(k, kt, f"{key}"): _convert(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported config type {tp!r}")  # a bug in this module, not in the file


def from_dict(cls: type, data: Mapping[str, Any], section: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types raise :class:`ConfigError`."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for k, v in data.items():
        key = f"{section}.{k}" if section else str(k)
        if k not in hints:
            where = f"in section '{section}'" if section else "at the top level"
            raise ConfigError(f"unknown config key '{key}' {where} (known: {', '.join(names)})")
        kwargs[k] = _convert(v, hints[k], key)
        if typing.get_origin(hints[k]) is dict:  # a mapping adds to / replaces keys of the default one
            default = next(f for f in dataclasses.fields(cls) if f.name == k).default_factory()
            kwargs[k] = {**default, **kwargs[k]}
    return cls(**kwargs)


def validate(cfg: Config) -> None:
    """Value checks beyond types: enumerations, task names, positive sizes."""
    for key, choices in CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(choices)}", key=key)
    t = cfg.train
    if not t.tasks:
        raise ConfigError("train.tasks: at least one task is needed", key="train.tasks")
    for task in t.tasks:
        if task not in TASKS:
            raise ConfigError(
                f"train.tasks: unknown task {task!r} (known: {', '.join(TASKS)})", key="train.tasks"
            )
        if task not in cfg.prompt.instructions:
            raise ConfigError(f"prompt.instructions: no instruction for task {task!r}")
        if task not in cfg.prompt.targets:
            raise ConfigError(f"prompt.targets: no target template for task {task!r}")
    for b in t.train_branches:
        if b not in ("content", "descriptor"):
            raise ConfigError(
                f"train.train_branches: unknown branch {b!r} (content, descriptor)",
                key="train.train_branches",
            )
    if "descriptor" in t.train_branches and t.descriptor_input != "features":
        raise ConfigError(
            "train.train_branches: the descriptor branch is trained only with descriptor_input: features"
        )
    for key, v in (
        ("train.batch_size", t.batch_size),
        ("train.grad_accum", t.grad_accum),
        ("train.alternate_every", t.alternate_every),
        ("train.dev_batch_size", t.dev_batch_size),
        ("model.downsample", cfg.model.downsample),
        ("model.latent_dim", cfg.model.latent_dim),
        ("model.encoder_dim", cfg.model.encoder_dim),
        ("model.adapter_dim", cfg.model.adapter_dim),
    ):
        if v < 1:
            raise ConfigError(f"{key}: must be >= 1, got {v}", key=key)
    if cfg.model.kind == "ssl_ser":
        bad = [task for task in t.tasks if task not in ("ser", "asr")]
        if bad:
            raise ConfigError(f"train.tasks: the ssl_ser model trains ser and asr only, not {bad}")
        if cfg.model.ssl_ser.finetune_upstream and not cfg.data.online_features:
            raise ConfigError(
                "model.ssl_ser.finetune_upstream needs data.online_features: true (a feature dump "
                "holds fixed features; fine-tuning must run the upstream on the audio)"
            )
    if len(t.adam_betas) != 2:
        raise ConfigError(
            f"train.adam_betas: expected two numbers, got {t.adam_betas}", key="train.adam_betas"
        )
    for key, value, (lo, lo_open), (hi, hi_open) in _RANGES(cfg):
        if not _in_range(value, lo, lo_open, hi, hi_open):
            if hi == _INF:
                span = f"{'>' if lo_open else '>='} {lo:g}"
            else:
                span = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
            raise ConfigError(f"{key}: must be {span}, got {value}", key=key)


_INF = float("inf")


def _RANGES(cfg: Config) -> list[tuple[str, float, tuple[float, bool], tuple[float, bool]]]:
    """``(key, value, (low, open), (high, open))`` of every numeric key with a range of meaning.

    Checked when a config is loaded, so a value that would make torch fail (a negative learning
    rate) or train something else (a dropout of 1.5) is one error naming the key before anything is
    written.  NaN is outside every range.
    """
    t, m, d = cfg.train, cfg.model, cfg.data
    closed0, open0, one, open1 = (0.0, False), (0.0, True), (1.0, False), (1.0, True)
    inf = (_INF, True)
    ranges = [
        ("train.lr", t.lr, open0, inf),
        ("train.adam_betas[0]", t.adam_betas[0], closed0, open1),
        ("train.adam_betas[1]", t.adam_betas[1], closed0, open1),
        ("train.adam_eps", t.adam_eps, open0, inf),
        ("train.weight_decay", t.weight_decay, closed0, inf),
        ("train.warmup_ratio", t.warmup_ratio, closed0, open1),
        ("train.max_grad_norm", t.max_grad_norm, closed0, inf),
        ("train.epochs", t.epochs, (1, False), inf),
        ("train.max_steps", t.max_steps, closed0, inf),
        ("train.log_every", t.log_every, (1, False), inf),
        ("train.save_every", t.save_every, closed0, inf),
        ("train.eval_every", t.eval_every, closed0, inf),
        ("train.dev_max_utts", t.dev_max_utts, closed0, inf),
        ("train.dev_max_new_tokens", t.dev_max_new_tokens, (1, False), inf),
        ("train.beta.content", t.beta.content, closed0, inf),
        ("train.beta.descriptor", t.beta.descriptor, closed0, inf),
        ("train.beta.warmup_steps", t.beta.warmup_steps, closed0, inf),
        ("model.lora.dropout", m.lora.dropout, closed0, open1),
        ("model.lora.r", m.lora.r, (1, False), inf),
        ("model.lora.alpha", m.lora.alpha, open0, inf),
        ("model.sigma_floor", m.sigma_floor, closed0, inf),
        ("model.ssl_ser.ctc_weight", m.ssl_ser.ctc_weight, closed0, inf),
        ("model.ssl_ser.projector_dim", m.ssl_ser.projector_dim, (1, False), inf),
        ("data.max_duration", d.max_duration, open0, inf),
        ("data.max_drop", d.max_drop, closed0, one),
        ("data.max_failed_share", d.max_failed_share, closed0, one),
        ("data.num_workers", d.num_workers, closed0, inf),
        ("data.bucket_batches", d.bucket_batches, (1, False), inf),
    ]
    return ranges


def _in_range(v: float, lo: float, lo_open: bool, hi: float, hi_open: bool) -> bool:
    if v != v:  # NaN
        return False
    return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)


# ----------------------------------------------------------------------------- files


def resolve_config_path(name: str | Path, relative_to: Path | None = None) -> Path:
    """A config file: a path (relative to ``relative_to`` first), else a packaged ``paper/NAME``."""
    name = str(name)
    candidates = []
    if relative_to is not None and not Path(name).is_absolute():
        candidates.append(relative_to / name)
    candidates.append(Path(name))
    for stem in (name, f"{name}.yaml"):
        candidates.append(PACKAGED_CONF / stem)
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise FileNotFoundError(
        f"config {name!r} not found (a path, or a packaged name such as 'paper/sys7_stage1')"
    )


def _merge(base: dict, child: Mapping) -> dict:
    out = dict(base)
    for k, v in child.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def read_yaml_tree(path: Path, _seen: tuple[Path, ...] = ()) -> dict:
    """Read a config file with its ``base:`` chain merged in (no typing yet)."""
    if path in _seen:
        raise ConfigError(
            f"{path}: 'base:' inheritance loops ({' -> '.join(str(p) for p in (*_seen, path))})"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of sections")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: 'base' must be a file name, got {base!r}")
    try:
        base_path = resolve_config_path(base, path.parent)
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: base {e}") from None
    return _merge(read_yaml_tree(base_path, (*_seen, path)), data)


def apply_override(tree: dict, assignment: str) -> None:
    """Apply ``section.key=value`` (value parsed as YAML) to a raw config tree."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected section.key=value")
    dotted, raw = assignment.split("=", 1)
    parts = dotted.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {assignment!r}: bad key {dotted!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    node = tree
    for p in parts[:-1]:
        child = node.get(p)
        if child is None:
            child = node[p] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {assignment!r}: {p!r} is not a section")
        node = child
    node[parts[-1]] = value


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> Config:
    """Load a config file (or the defaults when ``path`` is None) and apply ``--set`` overrides.

    An error names where the bad value came from: the file (with its ``base:`` chain), or the
    ``--set`` that brought the key or value in.
    """
    tree: dict = {}
    source = "defaults"
    if path is not None:
        p = resolve_config_path(path)
        source = str(p)
        tree = read_yaml_tree(p)
    try:
        from_dict(Config, tree)  # the file alone: its own unknown keys and types are its fault
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    set_by: dict[str, str] = {}  # dotted key -> the --set that gave it its value
    for o in overrides:
        apply_override(tree, o)
        try:
            from_dict(Config, tree)
        except ConfigError as e:
            raise ConfigError(f"--set {o}: {e}") from None
        set_by[o.split("=", 1)[0].strip()] = o
    try:
        cfg = from_dict(Config, tree)
        validate(cfg)
    except ConfigError as e:
        key = (e.key or "").split("[")[0]
        blame = next((f"--set {o}" for k, o in set_by.items() if key == k or key.startswith(k + ".")), source)
        raise ConfigError(f"{blame}: {e}") from None
    return cfg


def config_from_dict(data: Mapping[str, Any]) -> Config:
    cfg = from_dict(Config, data)
    validate(cfg)
    return cfg


def config_to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, allow_unicode=True, width=1000)

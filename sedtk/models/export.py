"""``sedtk model export EXP OUT``: a finished run as a folder to upload to the Hugging Face Hub.

What ``OUT`` holds (fixed names)::

    README.md          the model card: the Hub's YAML metadata (pipeline tag, tags, languages,
                       datasets, metrics and a model-index from the run's score.json, base models,
                       licence fields naming the base models' licences) and a usage block
    model.safetensors  the trained weights exactly as the checkpoint holds them: both branches
                       (content and descriptor: VIB block + adapter) and the LLM's LoRA, or, for the
                       SSL SER baseline, its heads; never a frozen base model
    config.yaml        the run's resolved config, ``model.llm`` / ``model.upstream`` naming the base
                       models by hub id (or ``base/<role>`` when bundled without one)
    meta.json          the checkpoint's metadata (stage, step, tasks, emotion labels, history)
    sedtk_model.json   the manifest: base models (hub id, revision, licence, bundled path), tasks,
                       labels, languages, datasets, metrics, where it was exported from
    score.json         the run's score.json (when given), the card's numbers
    LICENSE.md         only when the base models' licences differ: which licence covers what
    base/<role>/       only with ``bundle_base``: copies of the base models (small or private ones)
    COMPLETE           written last, as in a checkpoint: ``sedtk decode --model OUT`` loads the folder

``sedtk decode --model OUT`` (or the hub id it is uploaded as) loads it like a checkpoint: the base
models come from the manifest -- a bundled copy, else the hub id at its recorded revision through
the hub cache (:func:`sedtk.utils.hub.snapshot`) -- unless ``--llm`` / ``--upstream`` name local copies.

An export is refused, with the reason, for a run that has not finished (no ``train_summary.json``,
or its ``last`` checkpoint short of the run's total steps) or whose base models cannot be named (a
local folder with no hub id: give ``--llm-id``/``--upstream-id`` or ``--bundle-base``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from sedtk.errors import CheckpointError, InputError, OptionError
from sedtk.models.checkpoint import (
    CONFIG,
    MARKER,
    META,
    WEIGHTS,
    find_checkpoint,
    read_config_dict,
    read_meta,
)
from sedtk.utils.hub import (
    cached_revision,
    format_hub_ref,
    parse_hub_ref,
    snapshot,
    snapshot_location,
)
from sedtk.utils.io import atomic_write_text

MANIFEST = "sedtk_model.json"
EXPORT_FORMAT = "sedtk-export-v1"
#: Upstreams sedtk computes itself (no base model to name).
BUILTIN_UPSTREAMS = ("fbank", "fbank-raw")
#: Licences of the paper's base models (their model cards), used when the base model's own
#: README.md is not at hand.  ``(Hub licence id, link)``.
KNOWN_LICENSES: dict[str, tuple[str, str | None]] = {
    "meta-llama/Llama-3.1-8B-Instruct": (
        "llama3.1",
        "https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct/blob/main/LICENSE",
    ),
    "facebook/hubert-large-ls960-ft": ("apache-2.0", None),
    "facebook/wav2vec2-large-960h-lv60-self": ("apache-2.0", None),
}
#: score.json metric -> (model-index task type, shown name).  Values are percentages.
METRIC_TASKS = {
    "ua": ("audio-classification", "UA (unweighted accuracy, %)"),
    "wa": ("audio-classification", "WA (accuracy, %)"),
    "macro_f1": ("audio-classification", "macro-F1 (%)"),
    "wer": ("automatic-speech-recognition", "WER (%)"),
    "cer": ("automatic-speech-recognition", "CER (%)"),
    "bleu4": ("audio-text-to-text", "BLEU@4 (%)"),
    "meteor": ("audio-text-to-text", "METEOR (%)"),
    "rouge_l": ("audio-text-to-text", "ROUGE-L (%)"),
    "cider": ("audio-text-to-text", "CIDEr (%)"),
    "spice": ("audio-text-to-text", "SPICE (%)"),
    "attr_mean": ("audio-text-to-text", "descriptor attribute accuracy (%)"),
}
#: score.json metric -> the Hub's metric id (https://hf.co/metrics).
HUB_METRIC_IDS = {"ua": "recall", "wa": "accuracy", "macro_f1": "f1", "wer": "wer", "cer": "cer",
                  "bleu4": "bleu", "meteor": "meteor", "rouge_l": "rouge", "cider": "cider",
                  "spice": "spice", "attr_mean": "accuracy"}  # fmt: skip


@dataclass
class BaseModel:
    """A base model the export needs, and how it is found."""

    role: str  # "llm" | "upstream"
    source: str  # the run's config value (hub id or local path)
    id: str | None = None  # hub id
    revision: str | None = None  # commit
    license: str | None = None  # Hub licence id (apache-2.0, llama3.1, other, ...)
    license_name: str | None = None
    license_link: str | None = None
    path: str | None = None  # bundled copy, relative to the export folder
    folder: Path | None = field(default=None, repr=False)  # a local copy (licence, bundle), not exported

    @property
    def ref(self) -> str:
        return format_hub_ref(self.id, self.revision) if self.id else (self.path or self.source)


@dataclass
class ExportResult:
    out: Path
    checkpoint: Path
    base_models: list[BaseModel]
    metrics: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- is the run finished?


def finished_checkpoint(exp: Path, name: str | None = None) -> Path:
    """The checkpoint to export from a *finished* run; :class:`CheckpointError` saying why not."""
    exp = Path(exp)
    if not exp.is_dir():
        raise InputError(f"{exp}: no such experiment dir")
    if not (exp / "checkpoints").is_dir():
        raise CheckpointError(
            f"{exp}: not an experiment dir (no checkpoints/); give the EXP of 'sedtk train'"
        )
    summary = exp / "train_summary.json"
    last = find_checkpoint(exp, "last")
    if not summary.is_file():
        at = f" (its last checkpoint is at step {read_meta(last).get('step')})" if last else ""
        raise CheckpointError(
            f"{exp}: the run has not finished{at}: {summary.name}, written when training ends, is missing; "
            "let it finish (or resume it with the same 'sedtk train ... --exp') before exporting"
        )
    if last is not None:
        meta = read_meta(last)
        done, total = meta.get("step"), meta.get("total_steps")
        steps = json.loads(summary.read_text(encoding="utf-8")).get("steps")
        if total is not None and done is not None and done < total:
            raise CheckpointError(
                f"{exp}: the run has not finished: checkpoints/last is at step {done} of {total} "
                f"({summary.name} is from an earlier run); let it finish before exporting"
            )
        if steps is not None and done is not None and steps != done:
            raise CheckpointError(
                f"{exp}: {summary.name} says {steps} steps but checkpoints/last is at step {done}: a run "
                "is in progress or was interrupted; let it finish before exporting"
            )
    ckpt = find_checkpoint(exp, name)
    if ckpt is None:
        raise CheckpointError(f"{exp}: no complete checkpoint {name or '(best_ua, best_loss, last)'}")
    return ckpt


# ----------------------------------------------------------------------------- base models


def _card_license(folder: Path) -> tuple[str | None, str | None, str | None]:
    """(license, license_name, license_link) from a model folder's README.md front matter."""
    readme = folder / "README.md"
    if not readme.is_file():
        return None, None, None
    text = readme.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return None, None, None
    try:
        meta = yaml.safe_load(text.split("---", 2)[1]) or {}
    except yaml.YAMLError:
        return None, None, None
    if not isinstance(meta, dict) or not meta.get("license"):
        return None, None, None
    return str(meta["license"]), meta.get("license_name"), meta.get("license_link")


def resolve_base(role: str, source: str, given: str | None, bundle: bool) -> BaseModel:
    """Name the base model of ``role`` by hub id and revision (see the module docstring)."""
    base = BaseModel(role, source)
    opt = f"--{role}-id"
    local = Path(source) if Path(source).exists() else None
    if given:
        ref = parse_hub_ref(given)
        if ref is None:
            raise OptionError(f"{opt} {given!r}: expected ORG/NAME or ORG/NAME@REVISION")
        base.id, base.revision = ref
        at = snapshot_location(source) if local else None
        if base.revision is None and at and at[0] == base.id:
            base.revision = at[1]
    elif local is not None and (at := snapshot_location(local)):
        base.id, base.revision = at
    elif local is None and (ref := parse_hub_ref(source)):
        base.id, base.revision = ref
    if base.id and base.revision is None:
        base.revision = cached_revision(base.id)
    if not bundle:
        if base.id is None:
            raise CheckpointError(
                f"model.{role} is the local folder {source} with no hub id: name the hub model it is a copy "
                f"of with {opt} ORG/NAME[@REVISION], or copy it into the export with --bundle-base"
            )
        if base.revision is None:
            raise CheckpointError(
                f"cannot tell which revision of {base.id} (model.{role}) the run used: it is not in the "
                f"Hugging Face cache; give {opt} {base.id}@REVISION"
            )
    folder = local
    if folder is None and base.id and base.revision:
        try:
            folder = snapshot(base.id, base.revision, what=f"base model ({role})")
        except Exception:
            folder = None  # only needed for its licence and a bundle
    if folder is not None:
        base.license, base.license_name, base.license_link = _card_license(folder)
    if base.license is None and base.id in KNOWN_LICENSES:
        base.license, base.license_link = KNOWN_LICENSES[base.id]
    if bundle and folder is None:
        raise CheckpointError(f"model.{role} {source}: no local copy to bundle (fetch it first)")
    base.path = f"base/{role}" if bundle else None
    base.folder = folder
    return base


def base_models_of(tree: Mapping) -> list[tuple[str, str]]:
    """(role, config value) of every base model a config needs."""
    model = tree.get("model", {})
    out = []
    if str(model.get("upstream")) not in BUILTIN_UPSTREAMS:
        out.append(("upstream", str(model.get("upstream"))))
    if model.get("kind", "llm") == "llm":
        out.append(("llm", str(model.get("llm"))))
    return out


# ----------------------------------------------------------------------------- loading an export


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """The manifest of an exported folder, or None for an ordinary checkpoint."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None


def base_model_paths(folder: str | os.PathLike, manifest: Mapping) -> dict[str, str]:
    """role -> the local folder of each base model of an export (bundled, else a hub snapshot)."""
    out = {}
    for role, b in manifest.get("base_models", {}).items():
        if b.get("path"):
            p = Path(folder) / b["path"]
            if not (p / "config.json").is_file():
                raise CheckpointError(
                    f"{folder}: the bundled base model {b['path']} is missing or incomplete"
                )
            out[role] = str(p)
        elif b.get("id"):
            out[role] = str(snapshot(b["id"], b.get("revision"), what=f"base model ({role}) of {folder}"))
    return out


# ----------------------------------------------------------------------------- the score


def load_score(
    score: str | os.PathLike | None, ckpt: Path, exp: Path, system: str | None
) -> tuple[dict, dict]:
    """(the score.json content, the row of this model's system); both empty without ``score``."""
    if score is None:
        return {}, {}
    path = Path(score)
    path = path / "score.json" if path.is_dir() else path
    if not path.is_file():
        raise InputError(f"{score}: no score.json (give the --out dir of 'sedtk score' or its score.json)")
    result = json.loads(path.read_text(encoding="utf-8"))
    rows = result.get("systems", [])
    if system is not None:
        row = next((r for r in rows if r.get("name") == system), None)
        if row is None:
            raise OptionError(
                f"--system {system!r}: not in {path} (systems: {[r.get('name') for r in rows]})"
            )
        return result, row
    own = Path(exp).resolve()
    mine = [r for r in rows if any(own in Path(h).resolve().parents for _, h in r.get("pairs", []))]
    if len(mine) == 1:
        return result, mine[0]
    if len(rows) == 1:
        return result, rows[0]
    raise OptionError(
        f"{path}: which system is {exp}? none or several of {[r.get('name') for r in rows]} decoded from it; "
        "give --system NAME"
    )


# ----------------------------------------------------------------------------- the card


def _weight_groups(weights: Path) -> dict[str, int]:
    """Parameter count per group of the safetensors file (content.block, content.adapter, llm LoRA, ...)."""
    from safetensors import safe_open

    groups: dict[str, int] = {}
    with safe_open(str(weights), framework="pt") as f:
        for k in f.keys():
            parts = k.split(".")
            if parts[0] in ("content", "descriptor"):
                g = ".".join(parts[:2])
            elif parts[0] == "llm":
                g = "llm.lora" if "lora_" in k else "llm"
            else:
                g = parts[0]
            n = 1
            for d in f.get_slice(k).get_shape():
                n *= d
            groups[g] = groups.get(g, 0) + n
    return groups


GROUP_NAMES = {
    "content.block": "content branch: weighted sum + VIB disentanglement block (Sec. 3.2)",
    "content.adapter": "content branch: frame-stacking adapter (Sec. 3.3)",
    "descriptor.block": "descriptor branch: weighted sum + VIB disentanglement block",
    "descriptor.adapter": "descriptor branch: frame-stacking adapter",
    "llm.lora": "LLM LoRA (Sec. 3.4)",
    "llm": "LLM weights (llm_mode full)",
    "emotion": "emotion head (SSL SER baseline)",
    "ctc": "CTC head (SSL SER baseline)",
    "upstream": "fine-tuned SSL upstream",
}


def _group_order(item: tuple[str, int]) -> tuple[int, str]:
    names = list(GROUP_NAMES)
    return (names.index(item[0]) if item[0] in names else len(names), item[0])


def _license_fields(bases: list[BaseModel]) -> tuple[dict, str | None]:
    """The card's licence fields and, when the bases' licences differ, the LICENSE.md text."""
    known = [b for b in bases if b.license]
    names = sorted({b.license for b in known})
    if not bases:
        return {}, None
    if len(names) == 1 and len(known) == len(bases) and names[0] != "other":
        return {"license": names[0]}, None
    parts = [f"{b.license_name or b.license or 'unknown'}" for b in bases]
    fields = {
        "license": "other",
        "license_name": "-and-".join(dict.fromkeys(parts)),
        "license_link": "LICENSE.md",
    }
    lines = [
        "# Licence",
        "",
        "These weights were trained with, and only work together with, the base models below; using",
        "them means using those models, under their licences:",
        "",
    ]
    for b in bases:
        lic = b.license_name or b.license or "unknown (check its model card before publishing)"
        link = f" ({b.license_link})" if b.license_link else ""
        lines.append(f"- {b.role}: `{b.ref}` -- {lic}{link}")
    return fields, "\n".join(lines) + "\n"


def model_card(
    name: str,
    repo: str,
    manifest: Mapping,
    bases: list[BaseModel],
    groups: Mapping[str, int],
    score_row: Mapping,
    license_fields: Mapping,
) -> str:
    """README.md: the Hub's YAML metadata (huggingface_hub's ModelCardData) and the card's text."""
    from huggingface_hub import EvalResult, ModelCardData

    tasks = manifest["tasks"]
    metrics = {
        k: v for k, v in (score_row.get("metrics") or {}).items() if v is not None and k in METRIC_TASKS
    }
    datasets = list(manifest.get("datasets") or [])
    eval_results = [
        EvalResult(task_type=METRIC_TASKS[m][0], dataset_type=datasets[0], dataset_name=datasets[0],
                   metric_type=HUB_METRIC_IDS.get(m, m), metric_value=round(float(v), 2),
                   metric_name=METRIC_TASKS[m][1])
        for m, v in metrics.items()
    ] if datasets else None  # fmt: skip
    tags = ["sedtk", "speech-emotion-recognition", "explainable-ai"]
    if "asr" in tasks:
        tags.append("automatic-speech-recognition")
    if "ser_sed" in tasks:
        tags += ["speech-description", "audio-captioning"]
    data = ModelCardData(
        language=list(manifest.get("languages") or []) or None,
        library_name="sedtk",
        pipeline_tag="audio-classification",
        tags=tags,
        datasets=datasets or None,
        metrics=sorted({HUB_METRIC_IDS.get(m, m) for m in metrics}) or None,
        base_model=[b.id for b in bases if b.id] or None,
        base_model_relation="adapter" if any(b.role == "llm" for b in bases) else None,
        model_name=name,
        eval_results=eval_results,
        **license_fields,
    )
    ckpt = manifest["checkpoint"]
    kind = "the paper's LLM model (frozen SSL upstream -> two VIB blocks -> adapters -> LLM with LoRA)"
    if manifest["kind"] == "ssl_ser":
        kind = "the SSL SER baseline (weighted layer sum -> emotion head; CTC head)"
    lines = [
        "---",
        data.to_yaml(),
        "---",
        "",
        f"# {name}",
        "",
        "A sedtk model (Chen et al., *Towards LLM-Empowered Fine-Grained Speech "
        "Descriptors for Explainable Emotion Recognition*, INTERSPEECH 2025): from one recording, "
        + {
            True: "the transcript, a description of how the speech sounds and the emotion (with posterior).",
            False: "the emotion with its posterior (and a CTC transcript).",
        }[manifest["kind"] == "llm"],
        "",
        "## Model",
        "",
        f"- kind: {kind}",
        f"- trained by sedtk {manifest['sedtk_version']}: stage `{ckpt.get('stage')}`, "
        f"step {ckpt.get('step')}, checkpoint `{ckpt.get('name')}`",
        f"- tasks: {', '.join(f'`{t}`' for t in tasks)}",
        f"- emotion labels ({len(manifest['emotions'])}): "
        + ", ".join(f"`{e}`" for e in manifest["emotions"]),
        f"- languages: {', '.join(manifest.get('languages') or []) or 'not given'}; "
        f"datasets: {', '.join(datasets) or 'not given'}",
        "",
        "Weights (`model.safetensors`; the base models are not included"
        + (", except the bundled copies under `base/`" if any(b.path for b in bases) else "")
        + "):",
        "",
        "| part | parameters |",
        "|---|---:|",
        *(f"| {GROUP_NAMES.get(g, g)} | {n:,} |" for g, n in sorted(groups.items(), key=_group_order)),
        "",
        "Base models:",
        "",
        "| role | model | revision | licence |",
        "|---|---|---|---|",
        *(
            f"| {b.role} | `{b.id or b.path}` | `{b.revision or '-'}` | "
            f"{b.license_name or b.license or 'unknown: check before publishing'} |"
            for b in bases
        ),  # fmt: skip
        "",
    ]
    if metrics:
        n = score_row.get("n") or {}
        lines += [
            "## Results",
            "",
            f"From `score.json` (system `{score_row.get('name')}`; utterances scored: "
            + ", ".join(f"{t} {v}" for t, v in n.items() if v)
            + "):",
            "",
            "| metric | value |",
            "|---|---:|",
            *(f"| {METRIC_TASKS[m][1]} | {v:.1f} |" for m, v in metrics.items()),
            "",
        ]
    lines += [
        "## Usage",
        "",
        "With sedtk installed (see its README):",
        "",
        "```bash",
        f"sedtk decode --model {repo} --wav speech.wav            # transcript, description, emotion",
        f"sedtk decode --model {repo} --wav speech.wav --evidence  # + every claim checked against the audio",
        "```",
        "",
        "```python",
        "import sedtk",
        "",
        f'model = sedtk.load_model("{repo}")',
        'r = model("speech.wav")',
        "print(r.emotion, r.probability, r.transcript, r.description)",
        "```",
        "",
        "The base models are fetched through `huggingface_hub` at the revisions above (its cache, `HF_TOKEN` "
        "and `HF_HUB_OFFLINE` apply); `--llm PATH` / `--upstream PATH` point at local copies instead.",
        "",
        "## Limitations",
        "",
        "The descriptions are trained on descriptor pseudo-labels (pitch, volume, pace, ... binned from "
        "eGeMAPS measurements by `sedtk data describe`) where the corpus has no human descriptions; the "
        "emotion "
        "labels are the training corpus's own, and the model answers with one of them only.",
        "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- export


def export_model(
    exp: str | os.PathLike,
    out: str | os.PathLike,
    *,
    checkpoint: str | None = None,
    score: str | os.PathLike | None = None,
    system: str | None = None,
    datasets: Sequence[str] = (),
    languages: Sequence[str] = (),
    llm_id: str | None = None,
    upstream_id: str | None = None,
    bundle_base: bool = False,
    repo_id: str | None = None,
    name: str | None = None,
    force: bool = False,
) -> ExportResult:
    """Write the export folder ``out`` (see the module docstring); refused for an unfinished run."""
    from sedtk import __version__

    exp, out = Path(exp), Path(out)
    ckpt = finished_checkpoint(exp, checkpoint)
    if out.exists() and any(out.iterdir()) and not force:
        raise InputError(f"{out}: exists and is not empty (use --force to replace it)")
    tree = read_config_dict(ckpt)
    meta = read_meta(ckpt)
    given = {"llm": llm_id, "upstream": upstream_id}
    bases = [resolve_base(role, src, given[role], bundle_base) for role, src in base_models_of(tree)]
    score_json, row = load_score(score, ckpt, exp, system)
    warnings = [
        f"licence of {b.ref} ({b.role}) unknown: check it before publishing" for b in bases if not b.license
    ]
    langs = list(languages) or sorted(
        {row[t]["lang"] for t in ("asr", "sed") if isinstance(row.get(t), dict) and row[t].get("lang")}
    )
    if not datasets:
        warnings.append("no --dataset given: the card names no dataset and has no model-index")
    manifest = {
        "format": EXPORT_FORMAT,
        "sedtk_version": __version__,
        "kind": tree.get("model", {}).get("kind", "llm"),
        "tasks": list(meta.get("tasks") or tree.get("train", {}).get("tasks") or []),
        "emotions": list(meta.get("emotions") or []),
        "languages": langs,
        "datasets": list(datasets),
        "metrics": {k: v for k, v in (row.get("metrics") or {}).items() if v is not None},
        "score_system": row.get("name"),
        "checkpoint": {
            "name": ckpt.name,
            "stage": meta.get("stage"),
            "step": meta.get("step"),
            "exported_from": str(ckpt.resolve()),
        },  # fmt: skip
        "base_models": {
            b.role: {k: v for k, v in asdict(b).items() if k not in ("role", "folder")} for b in bases
        },
    }
    for b in bases:  # the config names each base model as the manifest resolves it
        tree.setdefault("model", {})[b.role] = b.id or b.path

    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        shutil.copyfile(ckpt / WEIGHTS, tmp / WEIGHTS)
        atomic_write_text(tmp / CONFIG, yaml.safe_dump(tree, sort_keys=False, allow_unicode=True))
        atomic_write_text(
            tmp / META, json.dumps({**meta, "exported_from": str(ckpt.resolve())}, indent=2) + "\n"
        )
        atomic_write_text(tmp / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        if score_json:
            atomic_write_text(tmp / "score.json", json.dumps(score_json, indent=1, ensure_ascii=False) + "\n")
        for b in bases:
            if b.path:
                shutil.copytree(b.folder, tmp / b.path, symlinks=False)
        license_fields, license_text = _license_fields(bases)
        if license_text:
            atomic_write_text(tmp / "LICENSE.md", license_text)
        title = name or f"sedtk {manifest['kind']} model ({', '.join(datasets) or exp.name})"
        card = model_card(title, repo_id or str(out), manifest, bases, _weight_groups(tmp / WEIGHTS), row,
                          license_fields)  # fmt: skip
        atomic_write_text(tmp / "README.md", card)
        atomic_write_text(tmp / MARKER, "export\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportResult(out, ckpt, bases, manifest["metrics"], warnings)

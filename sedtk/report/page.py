"""The static parts of the report page (systems, explain, header) as escaped HTML, and the page shell.

Everything taken from data goes through :func:`esc` (HTML) or :func:`json_for_script` (inline JSON);
the per-utterance cards and the timeline are drawn in the browser from the inline JSON by
``assets/report.js`` with ``textContent`` only (never ``innerHTML``).
"""

from __future__ import annotations

import html
import json
from importlib.resources import files

from sedtk.score.report import COLUMNS, json_safe, markers_of, table_columns


def esc(x: object) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def json_for_script(obj: object) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>``, ``&`` or line
    separators appear literally (a transcript holding ``</script>`` cannot end the element)."""
    s = json.dumps(json_safe(obj), ensure_ascii=False, separators=(",", ":"), allow_nan=False)  # NaN -> null
    for a, b in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        s = s.replace(a, b)
    return s


def asset(name: str) -> str:
    return (files("sedtk.report") / "assets" / name).read_text(encoding="utf-8")


def _pct(v: object, digits: int = 1) -> str:
    return "–" if not isinstance(v, int | float) else f"{v:.{digits}f}"


def _num(v: object) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1 else f"{v:.1f}"
    return esc(v)


# ----------------------------------------------------------------------------- small tables


def kv_table(rows: list[tuple[str, object]], cls: str = "kv") -> str:
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows if v is not None)
    return f'<table class="{cls}">{body}</table>'


def rate_table(obj: object, rate_keys: tuple[str, ...] = ()) -> str:
    """``{name: number}`` or ``{name: {field: value}}`` as a table; a field named in ``rate_keys``
    (a rate in [0, 1] or a percentage) also gets a bar."""
    if not isinstance(obj, dict) or not obj:
        return ""
    rows = [(k, v if isinstance(v, dict) else {"value": v}) for k, v in obj.items()]
    cols: list[str] = []
    for _, v in rows:
        for c, x in v.items() if isinstance(v, dict) else ():
            if c not in cols and not isinstance(x, dict | list):
                cols.append(c)
    head = "<tr><th></th>" + "".join(f"<th>{esc(c.replace('_', ' '))}</th>" for c in cols) + "</tr>"
    body = []
    for name, v in rows:
        cells = []
        for c in cols:
            x = v.get(c) if isinstance(v, dict) else None
            cell = "–" if x is None else _num(x)
            if c in rate_keys and isinstance(x, int | float) and not isinstance(x, bool):
                frac = x / 100 if x > 1 else x
                cell = (
                    f'<span class="bar"><span style="width:{max(0.0, min(1.0, frac)) * 100:.1f}%">'
                    f"</span></span> {100 * frac:.1f}%"
                )
            cells.append(f"<td>{cell}</td>")
        body.append(f"<tr><th>{esc(name)}</th>{''.join(cells)}</tr>")
    return f'<table class="rates">{head}{"".join(body)}</table>'


# ----------------------------------------------------------------------------- score


def metrics_table(score: dict, highlight: str | None) -> str:
    cols = table_columns(score)
    head = "<tr><th>ID</th><th>System</th>" + "".join(
        f"<th>{esc(COLUMNS[m][0])} {'↑' if COLUMNS[m][1] else '↓'}</th>" for m in cols
    )
    rows = []
    for s in score["systems"]:
        cls = ' class="this"' if s.get("name") == highlight else ""
        cells = "".join(
            f"<td>{_pct(s['metrics'].get(m))}<sup>{esc(markers_of(score, s['name'], m))}</sup></td>"
            for m in cols
        )
        rows.append(f"<tr{cls}><td>{esc(s.get('id'))}</td><th>{esc(s.get('name'))}</th>{cells}</tr>")
    legend = ""
    if score.get("baselines"):
        legend = "; ".join(
            f"{esc(b['marker'])} significant improvement over {esc(b['name'])}" for b in score["baselines"]
        )
        test = esc(score.get("test", "paired one-tailed t-test"))
        legend = f'<p class="note">{legend} ({test}, p &lt; {esc(score.get("alpha"))}).</p>'
    return f'<table class="metrics">{head}</tr>{"".join(rows)}</table>{legend}'


def confusion_table(ser: dict) -> str:
    conf = ser.get("confusion") or {}
    labels, columns, matrix = conf.get("labels") or [], conf.get("columns") or [], conf.get("matrix") or []
    if not labels or not matrix:
        return ""
    recall = ser.get("per_class_recall") or {}
    head = '<tr><th class="corner">ref \\ hyp</th>' + "".join(f"<th>{esc(c)}</th>" for c in columns)
    head += "<th>recall</th></tr>"
    rows = []
    for label, row in zip(labels, matrix, strict=False):
        total = sum(row) or 1
        cells = []
        for c, n in zip(columns, row, strict=False):
            a = n / total
            diag = " diag" if c == label else ""
            fg = "#fff" if a > 0.55 else "#111"
            cells.append(
                f'<td class="cm{diag}" style="background:rgba(37,99,235,{a:.3f});color:{fg}">{esc(n)}</td>'
            )
        rows.append(f"<tr><th>{esc(label)}</th>{''.join(cells)}<td>{_pct(recall.get(label))}%</td></tr>")
    return f'<table class="confusion">{head}{"".join(rows)}</table>'


#: Keys of a score.json system entry (or of score.json itself) holding per-attribute numbers.
ATTRIBUTE_KEYS = ("attribute_accuracy", "attributes", "descriptor_accuracy")
GROUNDING_KEYS = ("grounding", "grounding_rates", "evidence")
RATE_FIELDS = ("accuracy", "rate", "grounding_rate", "supported_rate", "agreement", "value")
VALIDITY_RATES = ("agreement", "true_contradicted", "false_caught", "coverage")


def _pick(d: dict, keys: tuple[str, ...]) -> object:
    for k in keys:
        if isinstance(d.get(k), dict) and d[k]:
            return d[k]
    return None


def attribute_rows(a: dict) -> dict:
    """score.json's ``attributes`` (``{"accuracy": {attr: %}, "n": {attr: n}, ...}``) per attribute."""
    cols = {k: v for k, v in a.items() if isinstance(v, dict)}
    names = list(cols.get("accuracy", {}))
    return {n: {c: v.get(n) for c, v in cols.items()} for n in names}


def grounding_table(g: dict) -> str:
    """A :func:`sedtk.data.evidence.grounding_summary` (or a plain ``{attribute: counts}``)."""
    if not isinstance(g, dict):
        return ""
    per = g.get("attributes") if isinstance(g.get("attributes"), dict) else g
    note = f'<p class="note">reference: {esc(g["reference"])}</p>' if g.get("reference") else ""
    if isinstance(g.get("utterances"), int):
        note += f'<p class="note">{g["utterances"]} utterances'
        if g.get("unvoiced_utterances"):
            note += f", {g['unvoiced_utterances']} without voiced speech"
        note += "</p>"
    table = rate_table(per, RATE_FIELDS)
    if not table:
        table = '<p class="note">no claims: the descriptions name no attribute the evidence check knows.</p>'
    valid = {
        a: d["validity"]
        for a, d in per.items()
        if isinstance(d, dict) and isinstance(d.get("validity"), dict)
    }
    if valid:
        table += (
            '<h5>The checker against the known truth</h5><p class="note">where utt2attr knows the attribute: '
            "agreement = decided verdicts that match the truth; true contradicted = true claims marked "
            "contradicted; false caught = false claims marked contradicted; coverage = decided share.</p>"
            + rate_table(valid, VALIDITY_RATES)
        )
    return table + note


def system_sections(score: dict, highlight: str | None) -> str:
    out = []
    for s in score["systems"]:
        parts = []
        ser = s.get("ser")
        if isinstance(ser, dict):
            m = s["metrics"]
            parts.append(
                '<div class="panel"><h4>Confusion matrix</h4>'
                f'<p class="note">UA {_pct(m.get("ua"))}%, WA {_pct(m.get("wa"))}%, '
                f"macro-F1 {_pct(m.get('macro_f1'))}%; rows: reference, columns: predicted, "
                f"shade: share of the row.</p>{confusion_table(ser)}</div>"
            )
        attr = _pick(s, ATTRIBUTE_KEYS) or _pick(s.get("sed") or {}, ATTRIBUTE_KEYS)
        if isinstance(attr, dict) and isinstance(attr.get("accuracy"), dict):
            attr = attribute_rows(attr)
        if attr is not None:
            parts.append(
                f'<div class="panel"><h4>Per-attribute accuracy</h4>{rate_table(attr, RATE_FIELDS)}</div>'
            )
        ground = _pick(s, GROUNDING_KEYS) or _pick(s.get("sed") or {}, GROUNDING_KEYS)
        if ground is not None:
            parts.append(f'<div class="panel"><h4>Grounding rates</h4>{grounding_table(ground)}</div>')
        if not parts:
            continue
        cls = " this" if s.get("name") == highlight else ""
        out.append(
            f'<section class="system{cls}"><h3>{esc(s.get("id"))}. {esc(s.get("name"))}</h3>'
            f'<div class="panels">{"".join(parts)}</div></section>'
        )
    return "".join(out)


# ----------------------------------------------------------------------------- explain


def layer_weight_svg(branch: str, weights: list[tuple[int, float]], w: int = 460, h: int = 170) -> str:
    """A bar chart of one branch's softmax layer weights (inline SVG, uniform 1/L dashed)."""
    if not weights:
        return ""
    left, bottom, top = 34, 22, 10
    n = len(weights)
    ymax = max(max(x for _, x in weights), 1.0 / n) * 1.1
    bw = (w - left - 6) / n
    ph = h - bottom - top

    def y(v: float) -> float:
        return top + ph * (1 - v / ymax)

    bars = []
    for j, (i, v) in enumerate(weights):
        x = left + j * bw
        bars.append(
            f'<rect x="{x + bw * 0.1:.1f}" y="{y(v):.1f}" width="{bw * 0.8:.1f}" '
            f'height="{top + ph - y(v):.1f}">'
            f"<title>hidden state {esc(i)}: {v:.4f}</title></rect>"
        )
        if n <= 16 or j % max(1, n // 12) == 0:
            bars.append(f'<text x="{x + bw / 2:.1f}" y="{h - 8}" class="tick">{esc(i)}</text>')
    u = y(1.0 / n)
    axis = (
        f'<line x1="{left}" y1="{top + ph}" x2="{w - 4}" y2="{top + ph}" class="axis"/>'
        f'<line x1="{left}" y1="{u:.1f}" x2="{w - 4}" y2="{u:.1f}" class="uniform"/>'
        f'<text x="{left - 4}" y="{top + 8}" class="ytick">{ymax:.2f}</text>'
        f'<text x="{left - 4}" y="{top + ph}" class="ytick">0</text>'
    )
    return (
        f'<figure class="lw"><figcaption>{esc(branch)} branch</figcaption>'
        f'<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-label="{esc(branch)} layer weights">'
        f"{axis}{''.join(bars)}</svg></figure>"
    )


def explain_section(ex: dict) -> str:
    parts = []
    lw = ex.get("layer_weights") or {}
    if lw:
        figs = "".join(layer_weight_svg(b, v) for b, v in lw.items())
        parts.append(
            '<div class="panel wide"><h4>Layer weights (Sec. 3.2)</h4><p class="note">softmax weight of '
            "every "
            "SSL hidden state (0: CNN output, i: Transformer layer i) in each branch; dashed: the uniform "
            f'1/L the weights start from.</p><div class="figs">{figs}</div></div>'
        )
    lat = ex.get("latent")
    if isinstance(lat, dict) and lat:
        parts.append(f'<div class="panel"><h4>Latent units (Eq. 2)</h4>{rate_table(lat)}</div>')
    emo = ex.get("emotion")
    if isinstance(emo, dict) and emo.get("accuracy") is not None:
        parts.append(
            f'<div class="panel"><h4>Emotion</h4>{rate_table({"emotion": emo}, ("accuracy",))}</div>'
        )
    att = ex.get("attributes")
    if isinstance(att, dict) and att:
        parts.append(
            '<div class="panel"><h4>Reference attributes named in the description</h4>'
            f"{rate_table(att, ('agreement_when_mentioned',))}</div>"
        )
    gr = ex.get("grounding")
    if isinstance(gr, dict) and gr:
        parts.append(f'<div class="panel"><h4>Grounding of the descriptions</h4>{grounding_table(gr)}</div>')
    if not parts:
        return ""
    ck = (
        f'<p class="note">checkpoint: <code>{esc(ex.get("checkpoint"))}</code></p>'
        if ex.get("checkpoint")
        else ""
    )
    return (
        f'<section id="explain"><h2>Explanation</h2>{ck}<div class="panels">{"".join(parts)}</div></section>'
    )


# ----------------------------------------------------------------------------- the page


def page(title: str, header: str, static_sections: str, data: dict) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="sedtk report">
<title>{esc(title)}</title>
<style>{asset("report.css")}</style>
</head>
<body>
<header><h1>{esc(title)}</h1>{header}</header>
<nav id="toc"></nav>
<main>
{static_sections}
<section id="timeline" hidden><h2>Timeline</h2><div id="tl-root"></div></section>
<section id="utterances"><h2>Utterances</h2>
<noscript><p class="note">The utterance cards are drawn by the page's script; enable JavaScript.</p>
</noscript>
<div id="utt-controls"></div><div id="utt-list"></div><div id="utt-pager"></div></section>
</main>
<footer>made by <code>sedtk report</code>; self-contained, no network access.</footer>
<script type="application/json" id="sedtk-data">{json_for_script(data)}</script>
<script>{asset("report.js")}</script>
</body>
</html>
"""

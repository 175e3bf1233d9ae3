r"""Measure a text student against its teacher's text tower; write ``results/text_student``.

Zero-shot accuracy on a labelled manifest (the Synth test split by default)
with class embeddings from the text student and from the teacher's text
tower, the same audio embeddings for both (a student checkpoint, or the
teacher's own audio tower with ``--audio teacher``); the same with paraphrased
labels that never appeared in the text corpus
(:data:`tinyclap.data.text_corpus.SYNTH_PARAPHRASES`); the cosine between
student and teacher text embeddings on the held-out phrases recorded in the
checkpoint; parameters, MB and CPU latency per label (interleaved rounds in
one process: each round embeds one new label with every encoder; the teacher
memoises nothing across labels because every label is new). Ratios: accuracy
of student text / teacher text, and parameters of the text student / the
teacher's text tower (and / MS-CLAP 2022's BERT-base text tower, 111.3M
parameters, the design brief's figure).

Example
-------
python -m tinyclap.studies.text_student \
    --text_student runs/demo/text_student/text_student.ckpt \
    --audio runs/demo/student/student.ckpt --manifest data/synth/test.json \
    --out results/text_student
"""

import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

from tinyclap.audio.io import load_audio
from tinyclap.data.pipelines import manifest_classes, read_manifest
from tinyclap.data.text_corpus import SYNTH_PARAPHRASES, vocabulary
from tinyclap.nn.complexity import count_params
from tinyclap.runtime.machine import machine_info
from tinyclap.stages.evaluate import load_encoder
from tinyclap.students.text import embed_texts, load_text_student
from tinyclap.studies.entry import module_main
from tinyclap.teachers import load_teacher
from tinyclap.zeroshot.prompts import DEFAULT_TEMPLATE, class_prompts, prompt_embeddings
from tinyclap.zeroshot.scoring import encode_clips

NAME = "text_student"
HELP = "a text student against its teacher's text tower: accuracy, size, latency"

MSCLAP_2022_TEXT_PARAMS = 111_300_000  # BERT-base 109.5M + text projection 1.8M (DESIGN.md)


def text_tower_modules(teacher):
    """The modules of a teacher's text side (encoder + text projection), for counting.

    Example
    -------
    >>> text_tower_modules(object())
    []
    """
    if hasattr(teacher, "sentence_encoder") and hasattr(teacher, "model"):  # mini
        return [teacher.sentence_encoder.model, teacher.model.text_projection]
    if hasattr(teacher, "clap"):  # msclap
        return [teacher.clap.caption_encoder]
    model = getattr(teacher, "model", None)
    if model is not None and hasattr(model, "text_model"):  # transformers CLAP
        return [model.text_model, model.text_projection]
    return []


def text_tower_params(teacher):
    """Parameters of a teacher's text tower (0 when unknown)."""
    return sum(count_params(m) for m in text_tower_modules(teacher))


class TextSide:
    """Anything with ``embed_text`` (what :func:`prompt_embeddings` calls) from a function."""

    def __init__(self, embed_text):
        self.embed_text = embed_text


def accuracy(clip_embs, class_embs, targets):
    """Top-1 zero-shot accuracy of ``[N, K]`` clips against ``[C, K]`` classes."""
    predictions = (clip_embs @ class_embs.T).argmax(-1)
    return float((predictions == targets).float().mean())


def latency_rounds(encoders, labels, template, rounds=30, warmup=3, threads=1):
    """Median ms per label of each encoder, timed in interleaved rounds (one new label each).

    Parameters
    ----------
    encoders : dict
        ``{name: callable(list[str])}``.
    labels : list of str
        At least ``rounds + warmup`` distinct labels.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    times = {name: [] for name in encoders}
    try:
        with torch.inference_mode():
            for i, label in enumerate(labels[: rounds + warmup]):
                prompt = [template.format(label=label)]
                for name, fn in encoders.items():
                    start = time.perf_counter()
                    fn(prompt)
                    if i >= warmup:
                        times[name].append(1000 * (time.perf_counter() - start))
    finally:
        torch.set_num_threads(previous)
    return {name: round(statistics.median(t), 3) for name, t in times.items()}


def measure(args):
    """Every figure of the report, as a dict."""
    student, tokenizer, payload = load_text_student(args.text_student)
    teacher_source = args.teacher_checkpoint or payload.get("teacher")
    teacher_name = args.teacher or payload.get("teacher_name") or "mini"
    kwargs = {"checkpoint": teacher_source} if teacher_name == "mini" else {}
    teacher = load_teacher(teacher_name, **kwargs)
    encoder = load_encoder(args.audio, teacher)
    entries = list(read_manifest(args.manifest).values())
    classes = manifest_classes(args.manifest)
    targets = torch.tensor([classes.index(e["label"]) for e in entries])
    wavs = [load_audio(e["wav"], encoder.sample_rate) for e in entries]
    clip_embs = encode_clips(encoder, wavs).cpu()

    def student_text(prompts):
        return embed_texts(student, tokenizer, prompts)

    kept = getattr(encoder, "kept_dims", None)
    rows = {}
    paraphrases = {c: SYNTH_PARAPHRASES.get(c) for c in classes}
    label_sets = {"labels": classes}
    if all(paraphrases.values()):
        label_sets["paraphrased labels"] = [paraphrases[c] for c in classes]
    for name, labels in label_sets.items():
        prompts = class_prompts(labels, args.prompt_template)
        teacher_embs = prompt_embeddings(teacher, prompts, encoder).cpu().float()
        student_embs = prompt_embeddings(TextSide(student_text), prompts, encoder)
        rows[name] = {
            "teacher_text_accuracy": round(accuracy(clip_embs, teacher_embs, targets), 4),
            "student_text_accuracy": round(accuracy(clip_embs, student_embs, targets), 4),
            "cos_student_teacher": round(float((teacher_embs * student_embs).sum(-1).mean()), 4),
        }
        rows[name]["accuracy_ratio"] = round(
            rows[name]["student_text_accuracy"] / max(rows[name]["teacher_text_accuracy"], 1e-9), 4
        )
    heldout = list(payload.get("heldout_phrases") or [])
    heldout_cos = None
    if heldout:
        t = teacher.embed_text(heldout).cpu().float()
        heldout_cos = round(float((student_text(heldout) * t).sum(-1).mean()), 4)
    student_params, tower_params = count_params(student), text_tower_params(teacher)
    tokenizer_bytes = len(tokenizer.model_proto)
    encoders = {"teacher text tower": teacher.embed_text, "text student": student_text}
    onnx_ms = None
    latency_labels = [v for v in vocabulary() if v not in set(classes)]
    latency = latency_rounds(
        encoders, latency_labels, args.prompt_template, args.rounds, threads=args.threads
    )
    if args.onnx:
        onnx_ms = onnx_latency(student, tokenizer, kept, latency_labels, args)
    run = Path(args.text_student).parent / "results.json"  # the stage that trained it
    trained_by = (
        json.loads(run.read_text(encoding="utf-8")).get("command") if run.is_file() else None
    )
    return {
        "text_student": str(args.text_student),
        "text_student_command": trained_by and f"python {trained_by}",
        "teacher": teacher_name,
        "teacher_checkpoint": teacher_source,
        "audio": str(args.audio),
        "kept_dims": kept,
        "manifest": str(args.manifest),
        "num_clips": len(entries),
        "num_classes": len(classes),
        "prompt_template": args.prompt_template,
        "zero_shot": rows,
        "heldout_phrases": len(heldout),
        "heldout_cos": heldout_cos,
        "params": {"text_student": student_params, "teacher_text_tower": tower_params},
        "size_ratio": round(student_params / max(tower_params, 1), 5),
        "size_ratio_vs_msclap_2022_text": round(student_params / MSCLAP_2022_TEXT_PARAMS, 5),
        "mb_float32": {
            "text_student": round(4 * student_params / 1e6, 3),
            "tokenizer_model": round(tokenizer_bytes / 1e6, 3),
            "teacher_text_tower": round(4 * tower_params / 1e6, 3),
        },
        "ms_per_label": {**latency, **({"text student (onnxruntime)": onnx_ms} if onnx_ms else {})},
        "latency": {"threads": args.threads, "rounds": args.rounds, "batch": 1},
        "text_student_config": payload.get("config"),
        "stage_metrics": payload.get("metrics", {}),
        "machine": machine_info(),
    }


def onnx_latency(student, tokenizer, kept, labels, args):
    """Median ms per label of the ONNX graph (onnxruntime, one thread); None without it."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    import tempfile

    from tinyclap.deploy.text_onnx import export_text_onnx, onnx_text_embeddings

    with tempfile.TemporaryDirectory() as tmp:
        path = export_text_onnx(student, Path(tmp) / "text_encoder.onnx", kept)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(args.threads)
        session = ort.InferenceSession(str(path), options)
        result = latency_rounds(
            {"onnx": lambda p: onnx_text_embeddings(session, tokenizer, p)},
            labels,
            args.prompt_template,
            args.rounds,
            threads=args.threads,
        )
    return result["onnx"]


def _pct(x):
    return f"{100 * x:.1f}%"


def render_table(record):
    """The markdown table of a :func:`measure` record."""
    lines = [
        "| label embeddings from | " + " | ".join(record["zero_shot"]) + " |",
        "|---|" + "---|" * len(record["zero_shot"]),
    ]
    zs = record["zero_shot"]
    for key, title in (
        ("teacher_text_accuracy", "teacher text tower: zero-shot accuracy"),
        ("student_text_accuracy", "text student: zero-shot accuracy"),
        ("accuracy_ratio", "accuracy ratio (student / teacher)"),
        ("cos_student_teacher", "cos(student text, teacher text), class prompts"),
    ):
        cells = [_pct(zs[n][key]) if "accuracy" in key else f"{zs[n][key]:.3f}" for n in zs]
        if key == "accuracy_ratio":
            cells = [f"{zs[n][key]:.3f}" for n in zs]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    p, mb, ms = record["params"], record["mb_float32"], record["ms_per_label"]
    size = [
        "",
        "| text encoder | params | MB (float32) | ms per label (CPU, batch 1) |",
        "|---|---|---|---|",
        f"| teacher text tower ({record['teacher']}) | {p['teacher_text_tower']:,} | "
        f"{mb['teacher_text_tower']:.1f} | {ms['teacher text tower']:.2f} |",
        f"| text student (PyTorch) | {p['text_student']:,} | {mb['text_student']:.2f} "
        f"(+ {mb['tokenizer_model']:.2f} tokenizer) | {ms['text student']:.2f} |",
    ]
    if "text student (onnxruntime)" in ms:
        size.append(f"| text student (onnxruntime) | same | same | "
                    f"{ms['text student (onnxruntime)']:.2f} |")  # fmt: skip
    ratios = [
        "",
        f"- size ratio (text student / teacher text tower): **{_pct(record['size_ratio'])}**; "
        f"against MS-CLAP 2022's BERT-base text tower (111.3M): "
        f"{_pct(record['size_ratio_vs_msclap_2022_text'])}",
        f"- accuracy ratio (labels): **{zs['labels']['accuracy_ratio']:.3f}**"
        + (
            f"; paraphrased labels: **{zs['paraphrased labels']['accuracy_ratio']:.3f}**"
            if "paraphrased labels" in zs
            else ""
        ),
        f"- cos(student text, teacher text) on {record['heldout_phrases']} held-out phrases: "
        f"{record['heldout_cos']}",
        f"- latency: median of {record['latency']['rounds']} interleaved rounds, "
        f"{record['latency']['threads']} thread(s), a new label each round",
    ]
    return "\n".join(lines + size + ratios) + "\n"


def render_readme(record, command):
    """The README beside the table: what was measured and the command."""
    trained = record.get("text_student_command")
    trained = f"{trained}\n" if trained else ""
    note = f"\n{record['note']}\n" if record.get("note") else ""
    return f"""# A tiny text student: measured on the embedded default

Zero-shot accuracy on `{record["manifest"]}` ({record["num_clips"]} clips,
{record["num_classes"]} classes) with audio embeddings from `{record["audio"]}` and class
embeddings from the teacher's text tower or from the text student
(`{record["text_student"]}`), prompt `{record["prompt_template"]}`.
"Paraphrased labels" rewords every class (e.g. "a barking dog" for "dog barking");
no sentence containing a paraphrase is in the text corpus.

{render_table(record)}
Regenerate: `make demo`, then train the text student and measure it:

```
{trained}{command}
```
{note}
The figures are in `results.json`. Timings on this shared 2-core machine
vary by up to 1.5x from run to run: compare the ratios.
"""


def add_arguments(parser):
    """The options of ``tinyclap study text_student``."""
    parser.add_argument("--text_student", required=True, help="text_student.ckpt")
    parser.add_argument("--audio", default="teacher",
                        help="audio encoder: a student checkpoint or 'teacher'")  # fmt: skip
    parser.add_argument("--manifest", default="data/synth/test.json")
    parser.add_argument("--teacher", help="teacher name (default: recorded in the checkpoint)")
    parser.add_argument("--teacher_checkpoint", help="default: recorded in the checkpoint")
    parser.add_argument("--prompt_template", default=DEFAULT_TEMPLATE)
    parser.add_argument("--out", default="results/text_student")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--no_onnx", dest="onnx", action="store_false")
    parser.add_argument("--note", help="a sentence for the README (how the run was made)")


def run(args):
    """Measure, print the table, write ``README.md``, ``table.md`` and ``results.json``."""
    record = measure(args)
    record["note"] = args.note
    given = shlex.split(args.invocation)
    if "--note" in given:  # the note describes the run; it is not part of the measurement
        del given[given.index("--note") : given.index("--note") + 2]
    command = shlex.join(given)
    record["command"] = command
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    (out / "table.md").write_text(render_table(record), encoding="utf-8")
    (out / "README.md").write_text(render_readme(record, command), encoding="utf-8")
    print(render_table(record))
    return record


def main(argv=None):
    """``python -m tinyclap.studies.text_student``: the same as ``tinyclap study text_student``."""
    return module_main(sys.modules[__name__], argv)


if __name__ == "__main__":
    main()

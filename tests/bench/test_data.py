"""``tinyclap bench data``: the loader is timed on every format, both ways, and the table written."""

import json

import soundfile as sf

from tinyclap.bench.data import FORMATS, write_format_corpus
from tinyclap.cli.main import main


def test_corpus_has_every_format(tmp_path):
    manifest = json.loads(write_format_corpus(tmp_path, len(FORMATS), 0.2).read_text())
    infos = [sf.info(entry["wav"]) for entry in manifest.values()]
    got = [(i.samplerate, i.subtype, i.channels) for i in infos]
    assert got == [(rate, subtype, channels) for _, rate, subtype, channels in FORMATS]


def test_bench_data_writes_the_table(tmp_path, capsys):
    status = main(["bench", "data", "--clips", "8", "--seconds", "0.5", "--workers", "0",
                   "--rounds", "1", "--sample_rate", "16000", "--window_seconds", "0.25",
                   "--out", str(tmp_path / "out")])  # fmt: skip
    assert status == 0
    record = json.loads((tmp_path / "out" / "results.json").read_text())
    assert record["command"].startswith("tinyclap bench data --clips 8")
    # 16 kHz: every format needs a copy (none is a mono WAV at 16 kHz)
    assert record["resampling_once"]["counts"] == {"written": 8, "up_to_date": 0, "kept": 0}
    (row,) = record["rows"]
    assert row["num_workers"] == 0 and row["as prepared: clips/s"] > 0
    assert row["resampled once: clips/s"] > 0 and row["gain (x)"] > 0
    assert "| num_workers |" in (tmp_path / "out" / "table.md").read_text()
    assert "gain (x)" in capsys.readouterr().out

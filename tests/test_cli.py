"""The ``tinyclap`` command line."""

import json

from tinyclap.cli import main


def test_bench_grid_prints_json(capsys):
    main(["bench", "--alpha", "0.25", "0.5", "--num_layers", "3", "--head_channels", "32",
          "--embedding_dim", "16", "--repeats", "2", "--json"])  # fmt: skip
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows] == ["phinet a0.25 b0.75 t0 4 N3", "phinet a0.5 b0.75 t0 4 N3"]
    assert rows[0]["params"] < rows[1]["params"]  # alpha widens the network
    assert rows[0]["macs"] < rows[1]["macs"]
    assert all(r["cpu_ms_per_clip"] > 0 for r in rows)


def test_bench_table_for_a_5s_44k_input(capsys):
    main(["bench", "--alpha", "0.25", "--num_layers", "3", "--head_channels", "32",
          "--embedding_dim", "16", "--sample_rate", "44100", "--f_max", "14000",
          "--clip_seconds", "5", "--repeats", "2"])  # fmt: skip
    out = capsys.readouterr().out
    assert "phinet a0.25" in out and "params" in out and "macs" in out

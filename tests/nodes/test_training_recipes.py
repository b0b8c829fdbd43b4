"""Every packaged training config builds its node; a tiny run trains, logs, plots and saves."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from omegaconf import OmegaConf

from dragoman.nodes.base import make_config
from dragoman.nodes.registry import resolve_node_class
from dragoman.nodes.training import CONF_DIR, load_train_config, train

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted(CONF_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_training_config_matches_its_node(path):
    cfg = OmegaConf.load(path)
    cls = resolve_node_class(cfg.node)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    make_config(cls.Config, model)  # raises on an unknown or mistyped key
    for key in ("trainer", "exp", "save_to"):
        assert key in cfg, f"{path.name} lacks {key}"


@pytest.fixture
def tiny_manifest(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for k, emotion in enumerate(["neutral", "happy", "sad", "angry"]):
        for i in range(3):
            t = np.arange(8000) / 16000
            wav = (0.1 + 0.1 * k) * np.sin(2 * np.pi * (100 + 60 * k) * t) + 0.002 * rng.standard_normal(t.size)
            path = tmp_path / f"{emotion}{i}.wav"
            sf.write(path, wav.astype(np.float32), 16000)
            rows.append({"audio_filepath": str(path), "duration": 0.5, "emotion": emotion})
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(map(json.dumps, rows)) + "\n")
    return manifest


def _overrides(manifest, run_dir):
    return [
        f"model.train_ds.manifest={manifest}", f"model.validation_ds.manifest={manifest}",
        "model.train_ds.num_workers=0", "model.validation_ds.num_workers=0",
        "model.net.channels=8", "model.net.layers=1", "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false", f"exp.dir={run_dir}", f"save_to={run_dir}/emo.nemo",
    ]


def test_train_function_saves_logs_plots_and_a_restorable_nemo(tiny_manifest, tmp_path):
    from dragoman.nodes.emotion_tokenizer import EmotionTokenizer

    cfg = load_train_config("emotion_tokenizer", overrides=_overrides(tiny_manifest, tmp_path / "runs"))
    train(cfg)
    run_dir = tmp_path / "runs" / "emotion_tokenizer"
    assert (run_dir / "curves.png").stat().st_size > 1000
    assert list((run_dir / "tb").rglob("events.out.tfevents.*"))
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    node = EmotionTokenizer.restore_from(tmp_path / "runs" / "emo.nemo")
    assert node.cfg.net.channels == 8


def test_nemo_style_script_runs_with_hydra_overrides(tiny_manifest, tmp_path):
    script = REPO / "examples" / "train_emotion_tokenizer.py"
    if not script.is_file():
        pytest.skip("examples/ not beside the tests")
    out = subprocess.run([sys.executable, str(script), *_overrides(tiny_manifest, tmp_path / "runs"),
                          f"hydra.run.dir={tmp_path / 'hydra'}"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "runs" / "emo.nemo").is_file()

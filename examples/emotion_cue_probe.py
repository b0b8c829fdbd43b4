"""How far can one utterance tell the corpus's emotions apart for a voice never heard before?

    python examples/emotion_cue_probe.py [--train data/corpus/train.jsonl]
        [--test data/corpus/test_unseen_speakers.jsonl] [--random-voices 1600] [--json]

The corpus renders an emotion as a prosody profile on top of the speaker (nodes/data/voices.py:
pitch level and range, rate, volume in percent). This probe measures those cues directly: ten
utterance statistics (YIN log-F0 median / std / 10-90 % spread / mean step, frame-energy 90th
percentile / mean / std in dB, voiced share, voicing onsets per second, language), then a
logistic regression and gradient boosting trained on `--train` and scored on `--test`. It also
prints each speaker's mean cue per emotion: the emotion shifts are regular within a speaker, but
the speakers' own levels differ by more than the shifts, so an unknown voice's baseline is the
missing piece. With `--random-voices N` the classifiers are also trained on N utterances spoken
by random espeak-ng voices (variants outside the corpus's twelve, random pitch/range/rate/amplitude),
the speaker prior a model would need to learn the population rather than ten voices. `speaker_normalised`
scores the same classifiers on cues minus each speaker's own mean (per language, labels unused):
the accuracy one utterance would allow if the voice's baseline were known.
"""
from __future__ import annotations

import argparse
import json
import random

import numpy as np
from bench_modes import run_main

CUES = ["log_f0_median", "log_f0_std", "log_f0_spread", "energy_p90_db", "energy_mean_db", "energy_std_db",
        "voiced_share", "onsets_per_s", "log_f0_step", "is_zh"]
# The cues the per-speaker table prints (the ones the emotion profiles move most).
SHOWN = ["log_f0_median", "log_f0_std", "energy_p90_db", "onsets_per_s"]
# espeak-ng variants that sound like a person, minus the twelve corpus speakers' (voices.py).
OTHER_VARIANTS = ("adam Alex Alicia Andrea Andy Annie antonio aunty belinda benjamin boris caleb david Denis Diogo ed "
                  "edward edward2 Gene Gene2 gustave Henrique Hugo iven iven2 iven3 iven4 Jacky john kaukovalta Lee "
                  "linda marcelo Marco Mario max Michael michel miguel Mike Nguyen pablo paul pedro quincy robert "
                  "steph2 steph3 Storm zac anika AnxiousAndy klatt2 klatt3 klatt4 klatt5 klatt6 m4 m6 m8 norbert "
                  "sandro shelby travis victor grandma grandpa").split()


def cues(wav: np.ndarray, lang: str, sample_rate: int = 16000) -> list[float]:
    """The utterance's values of CUES, in that order."""
    from dragoman.nodes.eval.pitch import frame_energy_db, track_pitch

    track = track_pitch(wav, sample_rate)
    energy = frame_energy_db(wav, sample_rate)[: len(track.f0)]
    voiced = track.voiced
    log_f0 = np.log(track.f0[voiced]) if voiced.sum() > 2 else np.full(3, np.log(100.0))
    speech = energy > energy.max() - 40.0
    onsets = np.sum(np.diff(voiced.astype(int)) == 1)
    return [float(np.median(log_f0)), float(log_f0.std()), float(np.percentile(log_f0, 90) - np.percentile(log_f0, 10)),
            float(np.percentile(energy[speech], 90)), float(energy[speech].mean()), float(energy[speech].std()),
            float(voiced.sum() / max(speech.sum(), 1)), float(onsets / (speech.sum() * 0.01 + 1e-3)),
            float(np.abs(np.diff(log_f0)).mean()), float(lang == "zh")]


def manifest_cues(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from dragoman.nodes.audio.io import read_audio
    from dragoman.nodes.manifest import read_manifest

    rows = read_manifest(path)
    x = [cues(read_audio(r["audio_filepath"]).numpy(), r["lang"]) for r in rows]
    return np.array(x), np.array([r["emotion"] for r in rows]), np.array([r["speaker"] for r in rows])


def _random_voice_item(args: tuple[int, dict]) -> tuple[list[float], str] | None:
    import torch
    import torchaudio

    from dragoman.nodes.data.tts import EspeakBackend
    from dragoman.nodes.data.voices import EMOTIONS, Speaker, jittered
    from dragoman.nodes.errors import DragomanError

    i, pair = args
    rng = random.Random(i)
    voice = Speaker(f"r{i}", "x", rng.choice(OTHER_VARIANTS), rng.randint(20, 85), rng.randint(-25, 35),
                    rng.randint(150, 185), rng.randint(60, 75))
    emotion, lang = list(EMOTIONS)[i % len(EMOTIONS)], rng.choice(["zh", "en"])
    backend = EspeakBackend()
    try:
        wav = backend.synthesize(pair[lang], lang, voice, jittered(EMOTIONS[emotion], rng))
    except DragomanError:  # a few variants have no Mandarin rendering
        return None
    wav = torchaudio.functional.resample(torch.from_numpy(wav), backend.sample_rate, 16000).numpy()
    return cues(wav, lang), emotion


def random_voice_cues(n: int, text_pairs: str) -> tuple[np.ndarray, np.ndarray]:
    import multiprocessing

    from dragoman.nodes.manifest import read_manifest

    pairs = read_manifest(text_pairs)[:n]
    # spawn: workers forked from a process whose torch thread pool has run can hang
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        done = [d for d in pool.map(_random_voice_item, list(enumerate(pairs)), chunksize=20) if d]
    return np.array([d[0] for d in done]), np.array([d[1] for d in done])


def scores(x_train, y_train, x_test, y_test) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scale = StandardScaler().fit(x_train)
    out = {}
    for name, clf in (("logistic", LogisticRegression(max_iter=3000)), ("boosting", HistGradientBoostingClassifier(random_state=0))):
        clf.fit(scale.transform(x_train), y_train)
        out[name] = {"train_accuracy": round(float((clf.predict(scale.transform(x_train)) == y_train).mean()), 3),
                     "test_accuracy": round(float((clf.predict(scale.transform(x_test)) == y_test).mean()), 3)}
    return out


def speaker_normalised(x: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """Cues minus the mean of the same speaker's utterances in the same language (labels unused):
    what a model could read if it had heard the voice before, e.g. from a reference utterance."""
    out = x.copy()
    lang = CUES.index("is_zh")
    for speaker in set(speakers):
        for zh in (0.0, 1.0):
            group = (speakers == speaker) & (x[:, lang] == zh)
            if group.any():
                cols = [c for c in range(x.shape[1]) if c != lang]
                out[np.ix_(group, cols)] -= x[np.ix_(group, cols)].mean(0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", default="data/corpus/train.jsonl")
    parser.add_argument("--test", default="data/corpus/test_unseen_speakers.jsonl")
    parser.add_argument("--random-voices", type=int, default=0, help="also train on N utterances of random voices")
    parser.add_argument("--text-pairs", default="data/extra2_text.jsonl", help="sentences for --random-voices")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    x_tr, y_tr, s_tr = manifest_cues(args.train)
    x_te, y_te, s_te = manifest_cues(args.test)
    result = {"corpus_voices": scores(x_tr, y_tr, x_te, y_te), "speaker_means": {},
              "speaker_normalised": scores(speaker_normalised(x_tr, s_tr), y_tr, speaker_normalised(x_te, s_te), y_te)}
    shown = [CUES.index(name) for name in SHOWN]
    for x, y, s in ((x_tr, y_tr, s_tr), (x_te, y_te, s_te)):
        for speaker in sorted(set(s)):
            result["speaker_means"][speaker] = {e: [round(float(v), 2) for v in x[(s == speaker) & (y == e)].mean(0)[shown]]
                                                for e in ("neutral", "happy", "angry", "sad") if ((s == speaker) & (y == e)).any()}
    if args.random_voices:
        x_rv, y_rv = random_voice_cues(args.random_voices, args.text_pairs)
        result["random_voices"] = scores(x_rv, y_rv, x_te, y_te)
    if args.json:
        print(json.dumps(result))
        return
    print(f"per speaker, per emotion: {', '.join(SHOWN)}")
    for speaker, table in result["speaker_means"].items():
        print(f"  {speaker}: " + "  ".join(f"{e} {v}" for e, v in table.items()))
    for key in ("corpus_voices", "speaker_normalised", "random_voices"):
        for name, acc in result.get(key, {}).items():
            print(f"trained on {key}, {name}: train accuracy {acc['train_accuracy']:.3f}, {args.test} accuracy {acc['test_accuracy']:.3f}")


if __name__ == "__main__":
    run_main(main)

"""ContentTokenizer node: waveform -> 12.5 Hz content tokens + transcript (its CTC head).

The network is `dragoman.nodes.modules.content_net.ContentNet`; the character alphabet of its
CTC head (`dragoman.nodes.text_units`) is built from the training manifest when the config gives
none and is stored in the config, so a `.nemo` decodes on its own. Train with
`python examples/train_content_tokenizer.py`; use alone as

    node = ContentTokenizer.default()              # or .restore_from("x.nemo")
    node.run(audio=[wav])["content_tokens"]        # [N] ids, 12.5 per second
    node.transcribe([wav], lang="en")              # the same head as a recogniser
    node.set_recognizer_lm(rows)                   # fuse character n-gram LMs into its decoding
    node.encoder_features([wav])                   # continuous 25 Hz features (ENCODER_RATE)

Inputs longer than `chunk_seconds` are cut into chunks on token boundaries (1280 samples) and
their tokens and characters joined: attention over an hour would not fit in memory, and whole
tokens keep the count at exactly ceil(frames / 8) (documented fallback; segment long audio with
the VAD node for the best transcripts).

Transcripts are greedy CTC unless the config's `decoding` holds a character n-gram LM for the
language asked for (`set_recognizer_lm`, or `dragoman node lm content_tokenizer`): then a CTC
prefix beam search fused with that LM (`dragoman.nodes.ctc_lm`) decodes. Only the reading of
the head changes; the tokens never do. Without a language (`language=None`) decoding is greedy.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from dragoman.nodes import types as T
from dragoman.nodes.audio.io import read_audio
from dragoman.nodes.ctc_lm import CharNgramLM, FusionScorer, ctc_prefix_beam_search
from dragoman.nodes.errors import DragomanError, GraphError
from dragoman.nodes.input_checks import check_waveforms
from dragoman.nodes.manifest import read_manifest
from dragoman.nodes.modules.content_net import TOKEN_RATE, ContentNet, ContentNetConfig
from dragoman.nodes.modules.features import length_mask, play_faster
from dragoman.nodes.modules.fsq import codebook_usage
from dragoman.nodes.text_units import CharVocab, build_vocab, ctc_greedy, normalize_text
from dragoman.nodes.trainable import TrainableNode, pad_batch

TOKEN_SAMPLES = 1280  # 16 kHz samples per 12.5 Hz token (8 mel hops of 160)
ENCODER_RATE = 25.0  # frames per second of encoder_features()


@dataclasses.dataclass
class TranscribedDataConfig:
    manifest: str = "???"
    batch_size: int = 16
    shuffle: bool = True
    num_workers: int = 0
    max_seconds: Optional[float] = None
    bucket: int = 20  # batches per length-sorted bucket: little padding, still shuffled


@dataclasses.dataclass
class LanguageModelConfig:
    """One language's character n-gram LM for shallow fusion (`dragoman.nodes.ctc_lm`)."""
    order: int = 3  # n of the n-grams `set_recognizer_lm` counts
    ngrams: str = ""  # CharNgramLM.to_text(); empty: greedy decoding for this language
    weight: float = 0.2  # LM log-probability scale; 0: greedy decoding
    length_bonus: float = 1.0  # added per written unit: offsets the LM's pull towards short outputs


@dataclasses.dataclass
class DecodingConfig:
    """How the CTC head is read. These defaults were the best on data/corpus/dev.jsonl for the
    first default head, LMs counted on the 1,600 train sentences (grid: order 2-8, weight 0.1-2,
    bonus 0-3.5): greedy CER zh 0.359, en 0.097 -> zh 0.333 (order 3, weight 0.2, bonus 1), en
    0.029 (order 6, weight 1.3, bonus 3); that head was confidently wrong in Chinese. The
    committed checkpoint carries its own settings: after its head was fine-tuned on 3.5x more
    speech (`train_head_only`) and its LMs counted on 60k grammar sentences, dev favoured zh
    order 3, weight 1.0, bonus 2 (CER 0.094) and en order 6, weight 1.0, bonus 3 (0.010). After
    session 9's re-placed-silence fine-tune (`edges`) en weight 0.7, bonus 2 read dev best (0.0071
    against 0.0082 at 1.0 / 3.0 for its trial head)."""
    beam: int = 16  # prefixes kept per frame (dev: 8 -> 16 -> 32: en 0.031, 0.029, 0.028); 1: greedy
    prune: float = 8.0  # extend only units within this many nats of a frame's best (12, 16: same CER, 2-5x slower)
    zh: LanguageModelConfig = dataclasses.field(default_factory=LanguageModelConfig)
    en: LanguageModelConfig = dataclasses.field(
        default_factory=lambda: LanguageModelConfig(order=6, weight=1.3, length_bonus=3.0))


@dataclasses.dataclass
class EdgeAugmentConfig:
    """Training-time silence and hiss around the speech (off by default).

    Why: every corpus recording starts speaking 10-90 ms in (median 20 ms, 300 train lines) and
    ends in 0.2-1 s of silence, and a network trained only on those learns where speech begins.
    So the speech (`speech_span`) is cut out and put back with silence drawn afresh on both
    sides, shorter or longer than the recording's: a head fine-tuned with silence only ADDED
    (session 9) read padded lines far better but the VadSegmenter's segments, which end soon
    after the last word, worse (zh transcripts in the quality graph 0.103 -> 0.133, 20 lines).
    The session-5 head read test lines (120, CER 0.030) at 0.046 with 20 ms of silence put in
    front, 0.168 with 80 ms and 0.189 with 300 ms; 300 ms before and after with -60 dBFS hiss
    under all of it, 0.209. The tokens shift with the speech, but only 74 % of them came out
    equal after exactly one token (80 ms) of silence, so the head must learn the others too."""

    prob: float = 0.0  # share of items whose speech is re-placed in new silence ...
    lead_s: float = 0.3  # ... 0 to this long in front (uniform)
    trail_s: float = 0.6  # ... and 0 to this long behind
    noise_prob: float = 0.0  # share of items with white noise under everything ...
    noise_dbfs: list[float] = dataclasses.field(default_factory=lambda: [-75.0, -45.0])  # ... at a level drawn here

    @staticmethod
    def problems(cfg) -> list[str]:
        """What is wrong with these settings (a config read from YAML or the command line)."""
        out = [f"{k} must be in [0, 1], got {cfg[k]}" for k in ("prob", "noise_prob") if not 0 <= cfg[k] <= 1]
        out += [f"{k} must be >= 0 seconds, got {cfg[k]}" for k in ("lead_s", "trail_s") if not cfg[k] >= 0]
        levels = list(cfg.noise_dbfs)
        if len(levels) != 2 or not levels[0] <= levels[1] <= 0:
            out.append(f"noise_dbfs must be [low, high] with low <= high <= 0 dBFS, got {levels}")
        return out


@dataclasses.dataclass
class ContentTokenizerConfig:
    net: ContentNetConfig = dataclasses.field(default_factory=ContentNetConfig)
    vocab: list[str] = dataclasses.field(default_factory=list)  # CTC units; built from train_ds when empty
    speakers: list[str] = dataclasses.field(default_factory=list)  # adversary classes; from train_ds when empty
    adversary_weight: float = 0.0  # gradient-reversal scale of the speaker adversary (0: none)
    aux_ctc_weight: float = 0.0  # weight of the auxiliary CTC on the continuous encoder (0: none)
    aux_units: str = "chars"  # its targets: "chars" (the alphabet) or "phones" (espeak-ng IPA, nodes/phonemes.py)
    phones: list[str] = dataclasses.field(default_factory=list)  # phoneme units; built from train_ds when empty
    latent_range_weight: float = 1.0  # penalty on FSQ latents beyond the range where codes change
    speed_factors: list[float] = dataclasses.field(default_factory=lambda: [1.0])  # training: one drawn per batch
    edges: EdgeAugmentConfig = dataclasses.field(default_factory=EdgeAugmentConfig)  # training: silence/hiss around items
    sample_rate: int = 16000
    chunk_seconds: float = 30.0
    decoding: DecodingConfig = dataclasses.field(default_factory=DecodingConfig)
    # Fine-tune only the recognition head (codes -> characters) on frozen tokens: the content
    # tokens, and so every node trained on them, stay bit-identical while the recogniser learns
    # from more speech than the tokenizer was trained on.
    train_head_only: bool = False
    optim: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "adamw", "lr": 2e-3, "weight_decay": 0.01})
    train_ds: Optional[TranscribedDataConfig] = None
    validation_ds: Optional[TranscribedDataConfig] = None


def speech_span(wav: torch.Tensor, sample_rate: int, gate_db: float = 50.0) -> tuple[int, int]:
    """[start, stop) samples from the first to the last 10 ms frame within `gate_db` of the
    loudest one (the corpus filters' `speech_bounds`); the whole clip when none is."""
    from dragoman.nodes.data.filters import speech_bounds

    start, stop = speech_bounds(wav.detach().cpu().numpy(), sample_rate, silence_db=-gate_db)
    return (start, stop) if stop > start else (0, int(wav.shape[-1]))


class TranscribedAudioDataset(Dataset):
    """(waveform, character ids, auxiliary target ids, speaker index) from a manifest with `text`,
    `lang`, `speaker`. The auxiliary targets are phoneme ids when `phones` is given, else the
    characters again."""

    def __init__(self, manifest: str, vocab: CharVocab, speakers: Sequence[str], max_seconds: float | None = None,
                 phones: Sequence[str] = ()):
        rows = read_manifest(manifest)
        if not rows:
            raise DragomanError(f"{manifest}: manifest is empty")
        if max_seconds is not None:
            rows = [r for r in rows if float(r.get("duration", 0.0)) <= max_seconds]
        self.rows, self.vocab = rows, vocab
        self.speaker_index = {name: i for i, name in enumerate(speakers)}
        for number, row in enumerate(rows, start=1):
            if row.get("lang") not in ("zh", "en") or not isinstance(row.get("text"), str):
                raise DragomanError(f"{manifest}:{number}: needs `text` and `lang` (zh or en)")
        self.phones = None
        if phones:
            from dragoman.nodes.phonemes import phonemize_rows

            index = {unit: i for i, unit in enumerate(phones)}
            self.phones = [[index[u] for u in seq if u in index] for seq in phonemize_rows(rows, f"phonemes {manifest}")]

    def __len__(self) -> int:
        return len(self.rows)

    def durations(self) -> list[float]:
        return [float(r.get("duration", 0.0)) for r in self.rows]

    def __getitem__(self, i: int):
        row = self.rows[i]
        ids = torch.tensor(self.vocab.encode(row["text"], row["lang"]), dtype=torch.long)
        aux = ids if self.phones is None else torch.tensor(self.phones[i], dtype=torch.long)
        return read_audio(row["audio_filepath"]), ids, aux, self.speaker_index.get(row.get("speaker"), -1)


def _pad_targets(targets) -> tuple[torch.Tensor, torch.Tensor]:
    out = torch.zeros(len(targets), max(1, max(len(t) for t in targets)), dtype=torch.long)
    for i, t in enumerate(targets):
        out[i, : len(t)] = t
    return out, torch.tensor([len(t) for t in targets])


def collate_transcribed(batch):
    """-> (wav [B, T], lengths [B], targets [B, L] (0-padded), target lengths [B], speakers [B],
    auxiliary targets [B, L'], their lengths [B])."""
    wavs, targets, aux, speakers = zip(*batch)
    wav, lengths = pad_batch(list(wavs))
    return (wav, lengths, *_pad_targets(targets), torch.tensor(speakers, dtype=torch.long), *_pad_targets(aux))


class LengthBucketSampler(BatchSampler):
    """Batches of similar duration from the items `sampler` yields: chunks of `bucket` batches are
    sorted by length, cut into batches, and (with `shuffle`) the batches shuffled; same items per
    epoch, ~half the padding.

    It batches an index sampler, as PyTorch's BatchSampler does, so that under DDP Lightning can
    re-build it around a DistributedSampler (`sampler` is the argument it replaces): each rank then
    buckets its own disjoint, equally long share of the items, and every rank takes the same
    number of steps. Its length is BatchSampler's, ceil(items / batch_size): only the last chunk
    can end in a partial batch, because a chunk holds a whole number of batches."""

    def __init__(self, sampler: Sampler, batch_size: int, durations: Sequence[float], bucket: int, shuffle: bool):
        super().__init__(sampler, batch_size, drop_last=False)
        self.durations, self.bucket, self.shuffle = list(durations), bucket, shuffle
        self.micro_batch_size = batch_size  # where NeMo's LR schedulers look for the batch size

    def __iter__(self):
        order = list(self.sampler)
        span = self.batch_size * max(1, self.bucket)
        batches = []
        for start in range(0, len(order), span):
            chunk = sorted(order[start : start + span], key=lambda i: self.durations[i])
            batches += [chunk[j : j + self.batch_size] for j in range(0, len(chunk), self.batch_size)]
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches)).tolist()]
        return iter(batches)


def bucketed_loader(dataset: TranscribedAudioDataset, batch_size: int, bucket: int, shuffle: bool,
                    num_workers: int) -> DataLoader:
    """Length-bucketed batches of `dataset`, items in random order when `shuffle`."""
    items = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
    batches = LengthBucketSampler(items, batch_size, dataset.durations(), bucket, shuffle)
    return DataLoader(dataset, batch_sampler=batches, num_workers=num_workers, collate_fn=collate_transcribed)


def remade(loader: DataLoader) -> DataLoader:
    """A new loader with the settings of `loader`, over the same (already loaded) dataset."""
    batches = loader.batch_sampler
    return bucketed_loader(loader.dataset, batches.batch_size, batches.bucket, batches.shuffle, loader.num_workers)


# ContentNet modules that produce the tokens (frozen by `train_head_only`); the rest read them.
TOKEN_PATH = ("frontend", "sub1", "sub2", "encoder", "pool", "latent_norm", "to_latent", "fsq", "aux_chars", "adversary")


class ContentTokenizer(TrainableNode):
    node_name = "content_tokenizer"
    Config = ContentTokenizerConfig
    optional_inputs = frozenset({"language"})

    def __init__(self, cfg=None, trainer=None):
        from omegaconf import DictConfig, OmegaConf

        raw = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg or {})
        manifest = (raw.get("train_ds") or {}).get("manifest")
        if not raw.get("vocab") or (raw.get("adversary_weight") and not raw.get("speakers")):
            if not manifest or manifest == "???":
                raise GraphError("content_tokenizer: config has no `vocab`; give one or a train_ds.manifest to build it from")
            rows = read_manifest(manifest)
            raw["vocab"] = raw.get("vocab") or build_vocab(rows)
            raw["speakers"] = raw.get("speakers") or sorted({str(r["speaker"]) for r in rows if r.get("speaker")})
        if raw.get("aux_units", "chars") not in ("chars", "phones"):
            raise GraphError(f"content_tokenizer: aux_units must be 'chars' or 'phones', got {raw['aux_units']!r}")
        if raw.get("aux_ctc_weight") and raw.get("aux_units") == "phones" and not raw.get("phones"):
            if not manifest or manifest == "???":
                raise GraphError("content_tokenizer: aux_units=phones needs `phones` or a train_ds.manifest to build them from")
            from dragoman.nodes.phonemes import build_phone_vocab, phonemize_rows

            raw["phones"] = build_phone_vocab(phonemize_rows(read_manifest(manifest)))
        net = dict(raw.get("net") or {})
        net["vocab_size"] = len(raw["vocab"])
        net["aux_vocab_size"] = len(raw.get("phones") or []) if raw.get("aux_units") == "phones" else 0
        net["num_speakers"] = len(raw.get("speakers") or []) if raw.get("adversary_weight") else 0
        net["aux_ctc"] = bool(raw.get("aux_ctc_weight"))
        raw["net"] = net
        self.vocab = CharVocab(raw["vocab"])
        super().__init__(raw, trainer)
        problems = EdgeAugmentConfig.problems(self.cfg.edges)
        if problems:
            raise GraphError(f"content_tokenizer: model.edges: {'; '.join(problems)}")
        self.net = ContentNet(ContentNetConfig(**OmegaConf.to_container(self.cfg.net)))
        if self.cfg.get("train_head_only"):
            for name in TOKEN_PATH:
                module = getattr(self.net, name)
                if module is not None:
                    module.requires_grad_(False)
        self._val_ids: list[torch.Tensor] = []
        self._scorers: dict[str, FusionScorer] = {}

    @classmethod
    def port_types(cls, cfg):
        return (
            {"audio": T.audio(cfg.sample_rate), "language": T.language()},
            {"content_tokens": T.tokens(T.ContentTokensType, TOKEN_RATE),
             "transcript": T.text()},
        )

    token_rate = TOKEN_RATE

    @property
    def codebook_size(self) -> int:
        return self.net.codebook_size

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor):
        return self.net(wav, lengths)

    # -- inference ---------------------------------------------------------------------------
    def _chunks(self, wavs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[int]]:
        size = max(1, int(self.cfg.chunk_seconds * self.cfg.sample_rate) // TOKEN_SAMPLES) * TOKEN_SAMPLES
        pieces, owner = [], []
        for i, wav in enumerate(wavs):
            for start in range(0, wav.shape[0], size):
                piece = wav[start : start + size]
                if start == 0 or piece.shape[0] >= self.net.frontend.win:
                    pieces.append(piece)
                    owner.append(i)
        return pieces, owner

    def _greedy(self, log_probs: torch.Tensor, frames: torch.Tensor, langs: Sequence[str | None]) -> list[list[int]]:
        out = []
        for row, n, lang in zip(log_probs, frames.tolist(), langs):
            if lang is not None:
                allowed = torch.tensor(self.vocab.language_mask(lang), device=row.device)
                row = row.masked_fill(~allowed, float("-inf"))
            out.append(ctc_greedy(row[:n].argmax(-1).tolist()))
        return out

    # -- LM fusion ---------------------------------------------------------------------------
    def _lm_alphabet(self, lang: str) -> list[str]:
        return [u for u, ok in zip(self.vocab.units[1:], self.vocab.language_mask(lang)[1:]) if ok]

    def set_recognizer_lm(self, rows: Sequence[dict]) -> dict[str, int]:
        """Count each language's character n-grams (order from `cfg.decoding`) in the normalised
        `text` of manifest rows with that `lang`, over the characters the head can write for it,
        and store them in the config (saved with the node). Returns n-grams per language."""
        sizes = {}
        for lang in ("zh", "en"):
            texts = [normalize_text(str(r["text"]), lang) for r in rows if r.get("lang") == lang and "text" in r]
            if not texts:
                raise DragomanError(f"{self.node_name}: no `text` with lang={lang} to estimate its language model from")
            lm = CharNgramLM.estimate(texts, int(self.cfg.decoding[lang].order), self._lm_alphabet(lang))
            self.cfg.decoding[lang].ngrams = lm.to_text()
            sizes[lang] = len(lm.counts)
        self._scorers = {}
        return sizes

    def _scorer(self, lang: str | None) -> FusionScorer | None:
        """The LM to fuse for `lang`, or None where decoding is greedy."""
        lm_cfg = self.cfg.decoding.get(lang) if lang in ("zh", "en") else None
        if lm_cfg is None or not lm_cfg.ngrams or not lm_cfg.weight or self.cfg.decoding.beam <= 1:
            return None
        if lang not in self._scorers:
            lm = CharNgramLM.from_text(lm_cfg.ngrams, self._lm_alphabet(lang))
            self._scorers[lang] = FusionScorer(lm, self.vocab.units)
        return self._scorers[lang]

    def _decode(self, log_probs: torch.Tensor, frames: torch.Tensor, langs: Sequence[str | None]) -> list[list[int]]:
        """Unit ids per item: LM-fused prefix beam search where the language has an LM, else greedy."""
        scorers = [self._scorer(lang) for lang in langs]
        if not any(scorers):
            return self._greedy(log_probs, frames, langs)
        host = log_probs.float().cpu().numpy()  # one device->host copy per batch; the search runs on the CPU
        dec = self.cfg.decoding
        out = []
        for k, (n, lang, scorer) in enumerate(zip(frames.tolist(), langs, scorers)):
            if scorer is None:
                out += self._greedy(log_probs[k : k + 1], frames[k : k + 1], [lang])
                continue
            rows = np.where(np.array(self.vocab.language_mask(lang)), host[k, :n], -np.inf)
            out.append(ctc_prefix_beam_search(rows, dec.beam, scorer, dec[lang].weight, dec[lang].length_bonus, dec.prune))
        return out

    def _process(self, audio: Sequence[torch.Tensor], langs: Sequence[str | None], sample_rate: int | None = None):
        wavs = check_waveforms(audio, self.node_name, expected_rate=self.cfg.sample_rate, sample_rate=sample_rate,
                               min_samples=self.net.frontend.win)
        pieces, owner = self._chunks(wavs)
        wav, lengths = pad_batch([p.to(self.device) for p in pieces])
        codes, ids, n = self.net.encode(wav, lengths)
        log_probs, frames = self.net.decode_codes(codes, n)
        chars = self._decode(log_probs, frames, [langs[i] for i in owner])
        tokens = [[] for _ in wavs]
        units = [[] for _ in wavs]
        for k, i in enumerate(owner):
            tokens[i].append(ids[k, : int(n[k])].cpu())
            units[i] += chars[k]
        return [torch.cat(t) for t in tokens], [self.vocab.decode(u, lang) for u, lang in zip(units, langs)]

    def infer(self, audio, language=None):
        langs = list(language) if language is not None else [None] * len(audio)
        tokens, texts = self._process(audio, langs)
        return {"content_tokens": tokens, "transcript": texts}

    def transcribe(self, wavs: Sequence[torch.Tensor], lang: str | None = None, sample_rate: int | None = None,
                   batch_size: int = 16) -> list[str]:
        """Transcripts of 16 kHz mono waveforms (any lengths; batched by length, padding masked).
        lang 'zh' or 'en' restricts the output alphabet and picks the LM (if any; else greedy
        CTC); zh text has no spaces, en text is lowercase words."""
        return self._batched(wavs, lambda chunk: self._process(chunk, [lang] * len(chunk), sample_rate)[1], batch_size)

    def tokenize(self, wavs: Sequence[torch.Tensor], batch_size: int = 16) -> list[torch.Tensor]:
        """Content token ids [N] per waveform (12.5 per second)."""
        return self._batched(wavs, lambda chunk: self._process(chunk, [None] * len(chunk))[0], batch_size)

    def _batched(self, wavs, fn, batch_size: int) -> list:
        order = sorted(range(len(wavs)), key=lambda i: -int(wavs[i].shape[-1]))
        out: list = [None] * len(wavs)
        with self._eval_mode():
            for start in range(0, len(order), batch_size):
                index = order[start : start + batch_size]
                for i, value in zip(index, fn([wavs[i] for i in index])):
                    out[i] = value
        return out

    def recognize_tokens(self, ids: Sequence[torch.Tensor], lang: str | None = None) -> list[str]:
        """Transcripts from content token ids alone (the head that read them in training)."""
        if not ids:
            return []
        with self._eval_mode():
            batch, lengths = pad_batch([torch.as_tensor(x, dtype=torch.long).to(self.device) for x in ids])
            try:
                log_probs, frames = self.net.tokens_to_log_probs(batch, lengths)
            except ValueError as err:
                raise DragomanError(f"{self.node_name}: bad content token ids ({err})") from None
            return [self.vocab.decode(u, lang) for u in self._decode(log_probs, frames, [lang] * len(ids))]

    def encoder_features(self, wavs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Continuous encoder outputs [F, dim] at ENCODER_RATE (25 Hz), before pooling and
        quantisation; repeat each frame twice for a 50 Hz stream."""
        wavs = check_waveforms(wavs, self.node_name, expected_rate=self.cfg.sample_rate, min_samples=self.net.frontend.win)
        with self._eval_mode():
            wav, lengths = pad_batch([w.to(self.device) for w in wavs])
            x, n = self.net.features(wav, lengths)
            return [x[i, : int(k)].cpu() for i, k in enumerate(n)]

    @contextlib.contextmanager
    def _eval_mode(self):
        """What run() does around infer(): eval mode and no autograd, restored afterwards."""
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            self.train(was_training)

    # -- training ----------------------------------------------------------------------------
    def make_dataloader(self, cfg, train: bool):
        aux = self.cfg.aux_ctc_weight and not self.cfg.get("train_head_only")  # the head-only loss has no aux term
        phones = list(self.cfg.phones) if aux and self.cfg.aux_units == "phones" else ()
        dataset = TranscribedAudioDataset(cfg.manifest, self.vocab, list(self.cfg.speakers), cfg.max_seconds, phones)
        return bucketed_loader(dataset, cfg.batch_size, cfg.bucket, train and cfg.shuffle, cfg.num_workers)

    # Lightning asks for the loaders through these hooks and, under DDP, re-builds each one around
    # a DistributedSampler. It can re-build a custom batch sampler only from the arguments it was
    # made with, and it records those only for objects created inside the hook; NeMo's hooks
    # return the loaders made at setup, before Lightning was watching, so hand out fresh ones.
    def train_dataloader(self):
        return remade(self._train_dl) if isinstance(self._train_dl, DataLoader) else super().train_dataloader()

    def val_dataloader(self):
        if isinstance(self._validation_dl, DataLoader):
            return remade(self._validation_dl)
        return super().val_dataloader()

    def _perturb_speed(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Play the batch `factor` times faster (Ko et al. 2015): new tempo and pitch, same words."""
        factor = float(self.cfg.speed_factors[int(torch.randint(len(self.cfg.speed_factors), ()))])
        if factor == 1.0:
            return wav, lengths
        fast = play_faster(wav, factor, self.cfg.sample_rate)
        return fast, torch.clamp((lengths.double() / factor).floor().long(), 1, fast.shape[1])

    def _augment_edges(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Re-place some items' speech inside random silence and put hiss under some
        (`EdgeAugmentConfig`)."""
        cfg, rate = self.cfg.edges, self.cfg.sample_rate
        if cfg.prob <= 0 and cfg.noise_prob <= 0:
            return wav, lengths
        items = []
        for w in (wav[i, : int(n)] for i, n in enumerate(lengths)):
            if float(torch.rand(())) < cfg.prob:
                start, stop = speech_span(w, rate)
                lead, trail = (int(float(torch.rand(())) * s * rate) for s in (cfg.lead_s, cfg.trail_s))
                w = F.pad(w[start:stop], (lead, trail))
            if float(torch.rand(())) < cfg.noise_prob:
                low, high = cfg.noise_dbfs
                w = w + torch.randn_like(w) * 10.0 ** ((low + (high - low) * float(torch.rand(()))) / 20.0)
            items.append(w)
        padded, new_lengths = pad_batch(items)
        return padded.to(wav.device), new_lengths.to(lengths.device)

    @classmethod
    def prepare_training_config(cls, cfg):
        """Fine-tuning (`init_from`) keeps the checkpoint's units, speakers, network shape and
        decoding unless the config names its own: a vocabulary rebuilt from another manifest
        would not fit the checkpoint's output layer."""
        from omegaconf import OmegaConf, open_dict

        if cfg.get("init_from") and not cfg.model.get("vocab"):
            source = cls.restore_from(cfg.init_from, return_config=True)  # the config only, no weights
            with open_dict(cfg):
                for key in ("vocab", "speakers", "phones", "aux_units", "net", "decoding"):
                    value = source.get(key)
                    if value is not None:
                        cfg.model[key] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        return cfg

    def _head_only_forward(self, wav: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            codes, ids, n = self.net.encode(wav, lengths)
        log_probs, frames = self.net.decode_codes(codes, n)
        return {"log_probs": log_probs, "frame_lengths": frames, "codes": codes, "ids": ids, "token_lengths": n,
                "latent_excess": log_probs.new_zeros(())}

    def _losses(self, batch):
        wav, lengths, targets, target_lengths, speakers, aux_targets, aux_target_lengths = batch
        if self.training:
            wav, lengths = self._augment_edges(*self._perturb_speed(wav, lengths))
        out = self._head_only_forward(wav, lengths) if self.cfg.get("train_head_only") else self.net(wav, lengths)
        ctc = F.ctc_loss(out["log_probs"].transpose(0, 1), targets, out["frame_lengths"], target_lengths,
                         blank=0, zero_infinity=True)
        logs = {"ctc": ctc, "latent_excess": out["latent_excess"]}
        loss = ctc + self.cfg.latent_range_weight * out["latent_excess"]
        if "aux_log_probs" in out:
            aux = F.ctc_loss(out["aux_log_probs"].transpose(0, 1), aux_targets, out["aux_lengths"], aux_target_lengths,
                             blank=0, zero_infinity=True)
            loss = loss + self.cfg.aux_ctc_weight * aux
            logs["aux_ctc"] = aux
        if self.net.adversary is not None and bool((speakers >= 0).all()):
            mask = length_mask(out["token_lengths"], out["codes"].shape[1])
            adv, acc = self.net.adversary(out["codes"], speakers, self.cfg.adversary_weight, mask)
            loss = loss + adv
            logs.update(adv=adv, adv_acc=acc)
        return loss, logs, out

    def training_step(self, batch, batch_idx):
        loss, logs, _ = self._losses(batch)
        self.log_dict({f"train_{k}": v for k, v in logs.items()} | {"train_loss": loss}, prog_bar=True,
                      batch_size=len(batch[1]))
        return loss

    def validation_step(self, batch, batch_idx):
        from dragoman.nodes.text_units import cer

        loss, logs, out = self._losses(batch)
        hyps = self._greedy(out["log_probs"], out["frame_lengths"], [None] * len(batch[1]))
        refs = [t[:n].tolist() for t, n in zip(batch[2], batch[3])]
        self._val_ids += [ids[:n].cpu() for ids, n in zip(out["ids"], out["token_lengths"])]
        self.log_dict({"val_loss": loss, "val_cer": cer(hyps, refs)} | {f"val_{k}": v for k, v in logs.items()},
                      prog_bar=True, batch_size=len(batch[1]), sync_dist=True)
        return loss

    def on_validation_epoch_end(self):
        if self._val_ids:
            usage = codebook_usage(torch.cat(self._val_ids), self.codebook_size)
            self.log_dict({"val_code_perplexity": usage["perplexity"], "val_used_codes": float(usage["used_codes"])})
        self._val_ids = []

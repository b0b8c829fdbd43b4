"""Train the Translator in UniSS's three phases, NeMo style.

    python examples/train_translator.py stage=cache                      # token cache from the corpus
    python examples/train_translator.py stage=align                      # + word timings (interleave_text)
    python examples/train_translator.py phase=1 trainer.max_epochs=3     # align text and speech
    python examples/train_translator.py phase=2 init_from=runs/translator_phase1.nemo
    python examples/train_translator.py phase=3 init_from=runs/translator_phase2.nemo model.optim.lr=0.0005

Config: nodes/conf/translator.yaml. The cache stage runs the speaker, content, emotion and semantic
tokenizers named under `tokenizers` (default: the committed checkpoints) over the manifests once,
so no epoch re-runs an encoder. Retraining one tokenizer means a new cache, e.g.

    python examples/train_translator.py stage=cache cache=data/translator_cache_s256.pt \
        tokenizers.semantic=runs/semantic256/semantic_tokenizer.nemo
"""
import torch
from nemo.core.config import hydra_runner
from omegaconf import DictConfig

from dragoman.nodes.training import CONF_DIR, train


def build_token_cache(cfg: DictConfig) -> None:
    from dragoman.nodes.content_tokenizer import ContentTokenizer
    from dragoman.nodes.emotion_tokenizer import EmotionTokenizer
    from dragoman.nodes.semantic_tokenizer import SemanticTokenizer
    from dragoman.nodes.speaker_encoder import SpeakerEncoder
    from dragoman.nodes.translator_data import build_cache

    torch.set_num_threads(2)
    from omegaconf import OmegaConf

    manifests = OmegaConf.to_container(cfg.manifests, resolve=True)  # a split: one manifest or a list
    use = cfg.tokenizers  # each "default" or a .nemo path
    cache = build_cache(manifests, cfg.cache, speaker=SpeakerEncoder.load(use.speaker), content=ContentTokenizer.load(use.content),
                        semantic=SemanticTokenizer.load(use.semantic), emotion=EmotionTokenizer.load(use.emotion))
    sizes = {split: len(recs) for split, recs in cache["splits"].items()}
    print(f"wrote {cfg.cache}: {sizes} utterances, mean rates {cache['mean_rate']}, token counts {cache['token_counts']}")


def align_token_cache(cfg: DictConfig) -> None:
    """Add `unit_phones` and `unit_bounds` (each word / Han character's phonemes and where it
    starts in the speech) to every record of the cache, and the phoneme inventory, for
    `model.interleave_text` (nodes/speech_units.py). The cache file is replaced only once every
    split is aligned."""
    import os

    from omegaconf import OmegaConf

    from dragoman.nodes.content_tokenizer import ContentTokenizer
    from dragoman.nodes.errors import DragomanError
    from dragoman.nodes.speech_units import align_records
    from dragoman.nodes.translator_data import load_cache, read_split

    torch.set_num_threads(2)
    cache = load_cache(cfg.cache)
    content = ContentTokenizer.load(cfg.tokenizers.content)
    manifests = OmegaConf.to_container(cfg.manifests, resolve=True)
    missing = sorted(set(cache["splits"]) - set(manifests))
    if missing:
        raise DragomanError(f"{cfg.cache}: split(s) {missing} have no manifest under `manifests`")
    for split, records in cache["splits"].items():
        counts = align_records(records, read_split(manifests[split]), content)
        print(f"{split}: {counts}")
    cache["phones"] = list(content.cfg.phones)[1:]  # the inventory, less the CTC blank (interleave_units=phones)
    tmp = f"{cfg.cache}.tmp"
    torch.save(cache, tmp)
    os.replace(tmp, cfg.cache)
    print(f"wrote unit bounds into {cfg.cache}")


@hydra_runner(config_path=str(CONF_DIR), config_name="translator")
def main(cfg: DictConfig) -> None:
    if cfg.stage == "cache":
        build_token_cache(cfg)
    elif cfg.stage == "align":
        align_token_cache(cfg)
    else:
        train(cfg)


if __name__ == "__main__":
    main()

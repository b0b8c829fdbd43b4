"""Train the EmotionTokenizer, NeMo style.

    python examples/train_emotion_tokenizer.py trainer.max_epochs=10 model.train_ds.manifest=data/corpus/train.jsonl

Config: nodes/conf/emotion_tokenizer.yaml (installed with the package); any key can be overridden
on the command line, including trainer.strategy=ddp trainer.devices=N for several devices.
"""
from nemo.core.config import hydra_runner
from omegaconf import DictConfig

from dragoman.nodes.training import CONF_DIR, train


@hydra_runner(config_path=str(CONF_DIR), config_name="emotion_tokenizer")
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()

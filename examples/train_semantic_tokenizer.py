"""Train the SemanticTokenizer, NeMo style.

    python examples/train_semantic_tokenizer.py trainer.max_epochs=10

Config: nodes/conf/semantic_tokenizer.yaml (installed with the package); any key can be overridden on the command
line. The first run builds the feature cache named in model.train_ds.cache (git-ignored data/).
"""
from nemo.core.config import hydra_runner
from omegaconf import DictConfig

from dragoman.nodes.training import CONF_DIR, train


@hydra_runner(config_path=str(CONF_DIR), config_name="semantic_tokenizer")
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()

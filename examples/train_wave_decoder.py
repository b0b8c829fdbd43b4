"""Train the WaveDecoder, NeMo style.

    python examples/train_wave_decoder.py trainer.max_epochs=10

Config: nodes/conf/wave_decoder.yaml (installed with the package); any key can be overridden on the command
line. The first run builds the feature cache named in model.train_ds.cache (git-ignored data/).
"""
from nemo.core.config import hydra_runner
from omegaconf import DictConfig

from dragoman.nodes.training import CONF_DIR, train


@hydra_runner(config_path=str(CONF_DIR), config_name="wave_decoder")
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()

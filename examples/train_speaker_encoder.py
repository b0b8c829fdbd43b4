"""Train the SpeakerEncoder, NeMo style.

    python examples/train_speaker_encoder.py trainer.max_epochs=N model.train_ds.manifest=data/corpus/train.jsonl

Config: nodes/conf/speaker_encoder.yaml (installed with the package); any key can be overridden on the
command line, including trainer.strategy=ddp trainer.devices=N for several devices. Writes
TensorBoard logs, curves.png and the .nemo under exp.dir/exp.name (see dragoman.nodes.training).
"""
from nemo.core.config import hydra_runner
from omegaconf import DictConfig

from dragoman.nodes.training import CONF_DIR, train


@hydra_runner(config_path=str(CONF_DIR), config_name="speaker_encoder")
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()

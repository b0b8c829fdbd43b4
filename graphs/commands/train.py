"""`dragoman train NODE [--config FILE] [key=value ...]`: train one node with Lightning."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("train", help="train one node (Lightning) from its config; overrides as key=value")
    p.add_argument("node", help="node name, e.g. emotion_tokenizer")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. trainer.max_epochs=5 model.train_ds.manifest=M")
    p.add_argument("--config", help="training config YAML (default: the node's packaged config)")
    p.add_argument("--print-config", action="store_true", help="print the merged config and exit")
    p.set_defaults(handler=run)


def run(args) -> int:
    from omegaconf import OmegaConf

    from dragoman.nodes.training import load_train_config, train

    cfg = load_train_config(args.node, args.config, args.overrides)
    if args.print_config:
        print(OmegaConf.to_yaml(cfg))
        return 0
    train(cfg)
    print(f"saved {cfg.save_to}")
    return 0

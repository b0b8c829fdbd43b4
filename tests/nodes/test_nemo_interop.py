"""A NeMo user names a dragoman module in their own NeMo model config and NeMo builds it."""
import dataclasses

import pytest
import torch
from omegaconf import OmegaConf


def _user_model_class():
    from nemo.core.classes import ModelPT
    from nemo.core.classes.common import safe_instantiate

    class UserModel(ModelPT):
        """What a NeMo user writes: submodules come from `_target_` entries of the config."""

        def __init__(self, cfg, trainer=None):
            super().__init__(cfg=cfg, trainer=trainer)
            self.quantizer = safe_instantiate(self.cfg.quantizer)

        def setup_training_data(self, cfg):
            pass

        def setup_validation_data(self, cfg):
            pass

        @classmethod
        def list_available_models(cls):
            return []

    return UserModel


CONFIG = {"quantizer": {"_target_": "dragoman.nodes.modules.fsq.FSQ", "levels": [4, 4, 4, 4, 4, 4]}}


def test_refused_before_registration_then_built_after():
    from nemo.core.classes import common

    from dragoman.nodes import register_with_nemo
    from dragoman.nodes.nemo_interop import PREFIX

    UserModel = _user_model_class()
    saved = list(common.ALLOWED_TARGET_PREFIXES)
    try:
        while PREFIX in common.ALLOWED_TARGET_PREFIXES:
            common.ALLOWED_TARGET_PREFIXES.remove(PREFIX)
        with pytest.raises(common.UnsafeTargetError):
            UserModel(OmegaConf.create(CONFIG))
        register_with_nemo()
        register_with_nemo()  # idempotent
        assert common.ALLOWED_TARGET_PREFIXES.count(PREFIX) == 1
        model = UserModel(OmegaConf.create(CONFIG))
        codes, ids = model.quantizer(torch.zeros(2, 6))
        assert model.quantizer.codebook_size == 4096 and ids.shape == (2,)
    finally:
        common.ALLOWED_TARGET_PREFIXES[:] = saved


def test_registration_adds_only_the_dragoman_prefix():
    from nemo.core.classes import common

    from dragoman.nodes import register_with_nemo

    before = set(common.ALLOWED_TARGET_PREFIXES)
    register_with_nemo()
    assert set(common.ALLOWED_TARGET_PREFIXES) - before <= {"dragoman."}

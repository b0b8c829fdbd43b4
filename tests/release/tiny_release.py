"""Tiny random UniSS release directories, in the released layout, for the release tests.

File names, config keys and tensor names are the released ones (UNISS_RELEASE.md items 1-14);
only sizes shrink: through the config files where the release reads them, and through
`TINY_WIDTHS` for the speaker-encoder widths the release hard-codes. The BiCodec tensors come from
dragoman's modules (their attribute paths are the released names; the tests also assert names
quoted in UNISS_RELEASE item 11), with the weight-normed convolutions split into `weight_g` /
`weight_v`; the wav2vec2 pickle comes from `transformers`' `Wav2Vec2ForPreTraining` with its
positional conv renamed to the old `weight_g`/`weight_v`; the WhisperVQ tensors are listed by hand
from the published architecture, independently of dragoman's module.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml
from safetensors.torch import save_file
from torch import nn

from dragoman.nodes import uniss_tokens as U
from dragoman.nodes.release.bicodec_decoder import WaveGenerator
from dragoman.nodes.release.bicodec_semantic import FactorizedVQ
from dragoman.nodes.release.bicodec_speaker import BiCodecSpeakerEncoder, SpeakerWidths
from dragoman.nodes.release.convnext import FeatureDecoder, FeatureEncoder

TINY_WIDTHS = dict(channels=16, context_dim=24, res2_scale=8, se_bottleneck=4, pool_bottleneck=4,
                   perceiver_heads=2, perceiver_dim_head=4, perceiver_depth=2, perceiver_ff_mult=4)
W2V_HIDDEN = 16
GLM_DIM, GLM_LAYERS, GLM_MELS, GLM_FFN, GLM_VOCAB = 16, 2, 16, 32, 16384

CODEC = {
    "mel_params": {"sample_rate": 16000, "n_fft": 1024, "win_length": 640, "hop_length": 320, "mel_fmin": 10,
                   "mel_fmax": None, "num_mels": 16},
    "encoder": {"input_channels": W2V_HIDDEN, "vocos_dim": 8, "vocos_intermediate_dim": 16, "vocos_num_layers": 2,
                "out_channels": 12, "sample_ratios": [1, 1]},
    "decoder": {"input_channel": 16, "channels": 16, "rates": [8, 5, 4, 2], "kernel_sizes": [16, 11, 8, 4]},
    "quantizer": {"input_dim": 12, "codebook_size": 8192, "codebook_dim": 8, "commitment": 0.25,
                  "codebook_loss_weight": 2.0, "use_l2_normlize": True, "threshold_ema_dead_code": 0.2},
    "speaker_encoder": {"input_dim": 16, "out_dim": 16, "latent_dim": 8, "token_num": 32,
                        "fsq_levels": [4, 4, 4, 4, 4, 4], "fsq_num_quantizers": 1},
    "prenet": {"input_channels": 12, "vocos_dim": 8, "vocos_intermediate_dim": 16, "vocos_num_layers": 2,
               "out_channels": 16, "condition_dim": 16, "sample_ratios": [1, 1], "use_tanh_at_final": False},
    "postnet": {"input_channels": 16, "vocos_dim": 8, "vocos_intermediate_dim": 16, "vocos_num_layers": 1,
                "out_channels": W2V_HIDDEN, "use_tanh_at_final": False},
}
SPARK_AUDIO = {"highpass_cutoff_freq": 40, "sample_rate": 16000, "segment_duration": 2.4, "max_val_duration": 12,
               "latent_hop_length": 320, "ref_segment_duration": 6, "volume_normalize": True}


def split_weight_norm(module: nn.Module, prefix: str, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """state_dict of `module` with every conv weight stored old-style as weight_g / weight_v
    (g over dim 0: [out,1,1] for Conv1d, [in,1,1] for ConvTranspose1d whose weight is [in,out,k]);
    g is the norm of v times a random factor, so folding must use both."""
    state = {f"{prefix}{k}": v.detach().clone() for k, v in module.state_dict().items()}
    for name, sub in module.named_modules():
        if isinstance(sub, (nn.Conv1d, nn.ConvTranspose1d)):
            key = f"{prefix}{name}.weight"
            v = state.pop(key)
            norm = v.pow(2).sum(dim=tuple(range(1, v.dim())), keepdim=True).sqrt()
            state[f"{key[:-len('weight')]}weight_g"] = norm * (0.5 + torch.rand(norm.shape, generator=generator))
            state[f"{key[:-len('weight')]}weight_v"] = v
    return state


def randomise_batchnorm(module: nn.Module, generator: torch.Generator) -> None:
    for sub in module.modules():
        if isinstance(sub, nn.BatchNorm1d):
            sub.running_mean.copy_(0.1 * torch.randn(sub.running_mean.shape, generator=generator))
            sub.running_var.copy_(0.5 + torch.rand(sub.running_var.shape, generator=generator))


def bicodec_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    c = CODEC
    sp = c["speaker_encoder"]
    speaker = BiCodecSpeakerEncoder(sp["input_dim"], sp["out_dim"], sp["latent_dim"], sp["token_num"], sp["fsq_levels"],
                                    SpeakerWidths(**TINY_WIDTHS))
    randomise_batchnorm(speaker, g)
    quantizer = FactorizedVQ(c["quantizer"]["input_dim"], c["quantizer"]["codebook_size"], c["quantizer"]["codebook_dim"])
    nn.init.normal_(quantizer.codebook.weight, generator=g)
    state = {f"speaker_encoder.{k}": v for k, v in speaker.state_dict().items()}
    state.update({f"encoder.{k}": v for k, v in FeatureEncoder(**c["encoder"]).state_dict().items()})
    state.update({f"prenet.{k}": v for k, v in FeatureDecoder(**c["prenet"]).state_dict().items()})
    state.update({f"postnet.{k}": v for k, v in FeatureDecoder(**c["postnet"]).state_dict().items()})
    state.update(split_weight_norm(quantizer, "quantizer.", g))
    state.update(split_weight_norm(WaveGenerator(**c["decoder"]), "decoder.", g))
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def write_bicodec(root: Path) -> None:
    codec_dir = root / "bicodec" / "BiCodec"
    codec_dir.mkdir(parents=True)
    (root / "bicodec" / "config.yaml").write_text(yaml.safe_dump(SPARK_AUDIO, sort_keys=False))
    (codec_dir / "config.yaml").write_text(yaml.safe_dump({"audio_tokenizer": CODEC}, sort_keys=False))
    save_file(bicodec_state(), str(codec_dir / "model.safetensors"), metadata={"format": "pt"})


def write_wav2vec2(root: Path, seed: int = 1) -> None:
    from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining

    folder = root / "bicodec" / "wav2vec2-large-xlsr-53"
    folder.mkdir(parents=True)
    config = Wav2Vec2Config(hidden_size=W2V_HIDDEN, num_hidden_layers=17, num_attention_heads=2, intermediate_size=32,
                            conv_dim=[8] * 7, conv_bias=True, do_stable_layer_norm=True, feat_extract_norm="layer",
                            num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, codevector_dim=8,
                            proj_codevector_dim=8, num_codevectors_per_group=4, num_codevector_groups=2,
                            architectures=["Wav2Vec2ForPreTraining"])
    torch.manual_seed(seed)
    model = Wav2Vec2ForPreTraining(config)
    state = {}
    for key, value in model.state_dict().items():
        key = key.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1", "weight_v")
        state[key] = value.detach().clone()
    torch.save(state, folder / "pytorch_model.bin")
    config.to_json_file(str(folder / "config.json"))
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "do_normalize": True, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
        "padding_side": "right", "padding_value": 0, "return_attention_mask": True, "sampling_rate": 16000}))


GLM_CONFIG = {
    "architectures": ["WhisperVQEncoder"], "model_type": "whisper", "activation_function": "gelu", "d_model": GLM_DIM,
    "encoder_attention_heads": 2, "encoder_ffn_dim": GLM_FFN, "encoder_layers": 32, "encoder_layerdrop": 0.0,
    "decoder_attention_heads": 2, "decoder_ffn_dim": GLM_FFN, "decoder_layers": 32, "num_hidden_layers": 32,
    "num_mel_bins": GLM_MELS, "max_source_positions": 1500, "max_target_positions": 448, "scale_embedding": False,
    "encoder_causal_attention": False, "encoder_causal_convolution": True, "pooling_kernel_size": 4,
    "pooling_position": GLM_LAYERS, "pooling_type": "avg", "quantize_causal_block_size": 200,
    "quantize_causal_encoder": False, "quantize_commit_coefficient": 0.25, "quantize_ema_decay": 0.99,
    "quantize_encoder_only": False, "quantize_loss_scale": 10.0, "quantize_position": GLM_LAYERS,
    "quantize_restart_interval": 100, "quantize_vocab_size": GLM_VOCAB, "skip_language_detection": True,
    "torch_dtype": "float32", "transformers_version": "4.44.1", "vocab_size": 51866,
}


def glm_state(seed: int = 2) -> dict[str, torch.Tensor]:
    """Released WhisperVQ tensor names and shapes (item 8), written out by hand."""
    g = torch.Generator().manual_seed(seed)
    d, f = GLM_DIM, GLM_FFN
    rnd = lambda *shape, s=0.3: s * torch.randn(*shape, generator=g)  # noqa: E731
    state = {"conv1.weight": rnd(d, GLM_MELS, 3), "conv1.bias": rnd(d), "conv2.weight": rnd(d, d, 3), "conv2.bias": rnd(d),
             "embed_positions.weight": rnd(1500, d), "embed_positions2.weight": rnd(375, d),
             "codebook.weight": rnd(GLM_VOCAB, d, s=1.0), "ema_count": torch.ones(GLM_VOCAB), "ema_weight": rnd(GLM_VOCAB, d)}
    for i in range(GLM_LAYERS):
        p = f"layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            state[f"{p}self_attn.{proj}.weight"] = rnd(d, d)
            if proj != "k_proj":
                state[f"{p}self_attn.{proj}.bias"] = rnd(d)
        for norm in ("self_attn_layer_norm", "final_layer_norm"):
            state[f"{p}{norm}.weight"] = 1 + rnd(d, s=0.1)
            state[f"{p}{norm}.bias"] = rnd(d, s=0.1)
        state.update({f"{p}fc1.weight": rnd(f, d), f"{p}fc1.bias": rnd(f), f"{p}fc2.weight": rnd(d, f), f"{p}fc2.bias": rnd(d)})
    return state


def write_glm(root: Path) -> None:
    folder = root / "glm4_tokenizer"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(GLM_CONFIG, indent=2))
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "chunk_length": 30, "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": GLM_MELS,
        "hop_length": 160, "n_fft": 400, "n_samples": 480000, "nb_max_frames": 3000, "padding_side": "right",
        "padding_value": 0.0, "processor_class": "WhisperProcessor", "return_attention_mask": False, "sampling_rate": 16000}))
    save_file(glm_state(), str(folder / "model.safetensors"), metadata={"format": "pt"})


QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
QWEN_PLAIN = ["<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
              "<|repo_name|>", "<|file_sep|>"]
BASE_VOCAB = 151643


def release_tokenizer(control: list[str] | None = None):
    """A `tokenizers` tokenizer with the released id layout: 151,643 base entries (a word-level
    stand-in for Qwen's byte-level BPE), Qwen2.5's 22 added tokens (14 special), then UniSS's
    tokens: 4096 global, 8192 semantic, 16384 glm, 35 speed, 35 control (known names, then
    fillers for the names no public source gives)."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

    words = ["[UNK]", *"abcdefghijklmnopqrstuvwxyz", "hello", "world"]
    vocab = {w: i for i, w in enumerate(words)}
    vocab.update({f"w{i}": i for i in range(len(words), BASE_VOCAB)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIAL])
    control = list(U.CONTROL_TOKENS if control is None else control)
    control += [f"<|uniss_reserved_{i}|>" for i in range(35 - len(control))]
    names = [*QWEN_PLAIN, *U.speech_token_names(4096, 8192, 16384), *control]
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in names])
    return tok


TOKENIZER_CONFIG = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|im_end|>",
                    "pad_token": "<|endoftext|>", "unk_token": "[UNK]", "model_max_length": 32768}


def hf_tokenizer(tok):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tok, **{k: v for k, v in TOKENIZER_CONFIG.items() if k != "tokenizer_class"})


def speak_semantic_tokens(model) -> None:
    """Make a random tiny LM write mostly semantic tokens, so an end-to-end run has speech to
    decode: the blocks add nothing (zero output projections), the final norm keeps hidden
    dimension 0 only, and every tied embedding row has a positive dimension 0 that is twice as
    large for the semantic rows: their logits lead by a fixed margin whatever the context."""
    base, count = U.RELEASE_LAYOUT["semantic"]
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb = model.model.embed_tokens.weight
        emb.normal_(0.0, 0.1)
        emb[:, 0] = 1.0
        emb[base: base + count, 0] = 2.0
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0


def write_llm(root: Path, seed: int = 3) -> None:
    """tokenizer.json + tokenizer_config.json (written directly: transformers' own writer spends
    seconds on 28k added tokens) and a tiny tied-embedding Qwen2 with the released vocabulary."""
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    release_tokenizer().save(str(root / "tokenizer.json"))
    (root / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG))
    config = Qwen2Config(vocab_size=U.RELEASE_VOCAB_SIZE, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                         tie_word_embeddings=True, torch_dtype="bfloat16", eos_token_id=151645, bos_token_id=151643)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    speak_semantic_tokens(model)
    model.save_pretrained(str(root), safe_serialization=True)
    GenerationConfig(eos_token_id=[151645, 151643], pad_token_id=151643).save_pretrained(str(root))


def write_release(root: Path) -> Path:
    """The whole tiny release under `root` (created)."""
    root.mkdir(parents=True, exist_ok=True)
    write_llm(root)
    write_glm(root)
    write_bicodec(root)
    write_wav2vec2(root)
    return root

"""Loading the released UniSS checkpoint directory into dragoman nodes (DESIGN §5, UNISS_RELEASE.md).

Every module here is written from the published descriptions (BiCodec / Spark-TTS arXiv
2503.01710, GLM-4-Voice arXiv 2412.02612, ECAPA-TDNN arXiv 2005.07143, Whisper) with attribute
paths equal to the released tensor names, so the files load strictly, without renaming tables:

- `layout`: the directory layout and the config schemas (one-line errors for a missing sub-folder
  or file, an unknown config key, a vocabulary that does not match the released id layout);
- `weights`: safetensors subsets, the wav2vec2 pickle (`weights_only`), weight-norm folding;
- `convnext`: BiCodec's ConvNeXt (Vocos) feature encoder and d-vector-conditioned decoder;
- `bicodec_speaker`, `bicodec_semantic`, `bicodec_decoder`, `glm_tokenizer`: the networks;
- `uniss_nodes`: the graph nodes `uniss_speaker_encoder`, `uniss_semantic_tokenizer`,
  `uniss_decoder`, `uniss_content_tokenizer`, built with `weights: DIR` (the release root).

The LLM and tokenizer at the root are the `translator` node's (`weights: DIR`).
"""

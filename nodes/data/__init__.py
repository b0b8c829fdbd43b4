"""UniST-style expressive parallel corpus (UniSS, arXiv 2509.21144, DESIGN §7).

Parallel zh/en sentences (a compositional grammar, or a user's own pairs) are rendered by a TTS
backend with one speaker voice and one emotion per pair, shared by source and target as in
UniST, filtered by duration ratio (and optionally by re-recognition), split into train / dev /
test / test_unseen_speakers, and written as NeMo-style JSONL manifests. CoVoST / CVSS-style
corpora that come with audio import into the same manifests.
"""

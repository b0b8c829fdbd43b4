"""Evaluation of speech-to-speech translation runs with the UniSS paper's metrics (DESIGN §9).

`dragoman eval --manifest RUN.jsonl` is the entry point (`dragoman.graphs.commands.eval`). The
pieces: the run manifest format (`run_manifest`), Text-BLEU (`text_bleu`), speech recognition
for Speech-BLEU (`recognizers`), the YIN pitch tracker (`pitch`), SLC and F0/energy contour
correlation (`prosody`), speaker and emotion judges (`judges`), scoring and RTF (`scoring`),
the report folder with its figures (`report`). Importing this package is cheap: heavy libraries
load inside the functions that need them.
"""

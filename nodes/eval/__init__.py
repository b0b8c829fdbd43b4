"""Evaluation of speech-to-speech translation runs with the UniSS paper's metrics (DESIGN §9).

`dragoman eval --manifest RUN.jsonl` is the entry point (`dragoman.graphs.commands.eval`); the
pieces: run manifest format (`run_manifest`), Text/Speech-BLEU (`text_bleu`, `recognizers`),
SLC and real-time factor (`timing`), F0/energy contours (`pitch`, `prosody`), speaker and
emotion judges (`speaker_judges`, `emotion`), scoring (`scoring`), report and plots (`report`,
`plots`). Importing this package is cheap: heavy libraries load inside the functions.
"""

"""The README's comparison table in one run: pocketsphinx and every bundled model, on Mini
LibriSpeech dev and on the speechocean762 validation speakers (issue 32), scored the same way.

    python benchmarks/every_voice.py [--json exp/every_voice.json]

Each system decodes one utterance at a time in its own process, with its folder's own
decoding settings (the LM each folder names); benchmarks/compare_pocketsphinx.py runs them.
The manifests come from recipes/default_model/run.sh stages 1 and 10.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compare_pocketsphinx import run_system, score  # noqa: E402

TEST_SETS = {
    "dev": "data/manifests/mini/dev.jsonl",
    "so762 validation": "data/manifests/so762_spk/held_out.jsonl",
}
MODELS = ("en-phones", "en-default", "en-stream")  # en-phones: the default since issue 32


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="data/models/X")
    parser.add_argument("--pocketsphinx-env", default=".venv-pocketsphinx")
    parser.add_argument("--json", default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    for name, manifest in TEST_SETS.items():
        if not Path(manifest).is_file():
            raise SystemExit(f"{manifest} ({name}) is missing: run recipes/default_model/run.sh")
    systems = [("pocketsphinx", "pocketsphinx", None)]
    systems += [(model, "beam+lm", f"data/models/{model}") for model in args.models]
    rows: dict[str, dict] = {}
    header = " | ".join(f"{name} WER % | {name} x real time" for name in TEST_SETS)
    print(f"| system | {header} |\n|---|{'---|---|' * len(TEST_SETS)}")
    for label, system, model in systems:
        rows[label] = {}
        for name, manifest in TEST_SETS.items():
            run = argparse.Namespace(
                manifest=manifest, model=model, pocketsphinx_env=args.pocketsphinx_env
            )
            rows[label][name] = score(run_system(system, run), manifest)
        cells = " | ".join(f"{100 * r['wer']:.2f} | {r['speed']:.1f}" for r in rows[label].values())
        print(f"| {label} | {cells} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

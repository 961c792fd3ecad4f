#!/usr/bin/env bash
# Seeds each fuzz target's corpus from the committed fixtures (corpora are not committed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fx="$here/../tests/fixtures/import"
seed() { mkdir -p "$here/corpus/$1"; shift_target=$1; shift; for f in "$@"; do cp "$f" "$here/corpus/$shift_target/"; done; }
seed import_csv "$fx"/csv/*.csv "$fx"/csv/broken/*.csv "$fx"/cell/*.csv "$fx"/val/*.csv
seed import_jsonl "$fx"/jsonl/*.jsonl "$fx"/jsonl/broken/*.jsonl
seed import_hf_trainer "$fx"/hf/*.json "$fx"/hf/checkpoint-40/trainer_state.json "$fx"/hf/broken/*.json
seed import_tensorboard $(find "$fx/tensorboard" -name 'events.out.tfevents*')
seed import_detectron2 $(find "$fx/detectron2" -name '*.json')
seed import_llama_factory $(find "$fx/llama_factory" -name '*.jsonl')
seed import_lightning $(find "$fx/lightning" -name '*.csv')
seed import_wandb $(find "$fx/wandb" -name '*.csv')
seed import_text $(find "$fx/text" -name '*.log')
seed import_mmengine $(find "$fx/mmengine" -name '*.json')
seed import_keras $(find "$fx/keras" -name '*.log')
mkdir -p "$here/corpus/import_burn_train"
# One seed: the artifact's files joined by 0xFF in the target's slot order.
python3 - "$fx/burn_train/artifact" "$here/corpus/import_burn_train/artifact" <<'PY'
import sys, os
root, out = sys.argv[1], sys.argv[2]
slots = [("train",1,"Loss"),("train",1,"Learning_Rate"),("valid",1,"Loss"),("valid",1,"Accuracy"),("train",2,"Loss")]
parts = []
for split, epoch, metric in slots:
    p = os.path.join(root, split, f"epoch-{epoch}", f"{metric}.log")
    parts.append(open(p, "rb").read() if os.path.exists(p) else b"")
open(out, "wb").write(b"\xff".join(parts))
PY

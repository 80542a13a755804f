#!/usr/bin/env bash
# `make demo`: the 2018 Kin mission on the embedded platform, end to end, on its real data.
#
# Builds the `kin` dataset (Korean question pairs) from ../shared/data/question_pair when
# that mirror sits beside the clone, else from upstream; trains the TF-IDF pair model and the
# 2018 organisers' MLP baseline side by side; submits both; prints the board.
# DEMO_MAX_TRAIN=N trains on N pairs only (a quick check of the script itself, as the tests do).
set -euo pipefail
NSML=${NSML:-nsml}
MAX_TRAIN=${DEMO_MAX_TRAIN:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MIRROR="$ROOT/../shared/data/question_pair"
started=$SECONDS
echo "Starting the platform (the first nsml command starts it in the background)..."
step() { printf '\n[%3ds] $ %s\n' "$((SECONDS - started))" "$*"; }

if "$NSML" dataset ls --json | python3 -c 'import json, sys; sys.exit(0 if any(d["name"] == "kin" for d in json.load(sys.stdin)) else 1)'; then
  step "nsml dataset ls    # kin is already built"
  "$NSML" dataset ls
elif [ -d "$MIRROR" ]; then
  step "nsml dataset build kin --source ../shared/data/question_pair"
  "$NSML" dataset build kin --source "$MIRROR"
else
  step "nsml dataset build kin    # downloads songys/Question_pair"
  "$NSML" dataset build kin
fi

cd "$ROOT/missions/kin"
start() {  # prints the new session's name
  local args=$1
  [ "$MAX_TRAIN" = 0 ] || args="$args --max-train $MAX_TRAIN"
  "$NSML" run -d kin -e main.py -a "$args" -m "$2" --json \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["name"])'
}
step "nsml run -d kin -e main.py -a \"--model tfidf\" -m \"make demo: TF-IDF pair model\""
tfidf=$(start "--model tfidf" "make demo: TF-IDF pair model")
echo "Session $tfidf started."
step "nsml run -d kin -e main.py -a \"--model mlp --epochs 10\" -m \"make demo: the 2018 MLP baseline\""
mlp=$(start "--model mlp --epochs 10" "make demo: the 2018 MLP baseline")
echo "Session $mlp started."

for name in "$tfidf" "$mlp"; do
  step "nsml logs -f $name"
  "$NSML" logs -f "$name"
done
step "nsml ps -a -n 5"
"$NSML" ps -a -n 5
for name in "$tfidf" "$mlp"; do
  status=$("$NSML" ps -a --json | python3 -c "import json, sys; print(next(s['status'] for s in json.load(sys.stdin) if s['name'] == '$name'))")
  if [ "$status" != "exited" ]; then
    echo "demo session $name ended as '$status'" >&2
    exit 1
  fi
done

step "nsml model ls $tfidf"
"$NSML" model ls "$tfidf"
step "nsml submit $tfidf best -t    # predictions for 10 test inputs, no score posted"
"$NSML" submit "$tfidf" best -t
for name in "$tfidf" "$mlp"; do
  step "nsml submit $name best    # scored on the hidden test split"
  "$NSML" submit "$name" best
done
step "nsml board kin"
"$NSML" board kin
echo
echo "Done in $((SECONDS - started)) s. The platform keeps running in the background (\`nsml server stop\` stops it)."

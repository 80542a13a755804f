#!/usr/bin/env bash
# `make demo`: the 2018 workflow on the embedded platform, end to end.
set -euo pipefail
NSML=${NSML:-nsml}
cd "$(dirname "$0")/kin_mlp"

echo "\$ nsml dataset ls"
"$NSML" dataset ls
echo
echo "\$ nsml run -d demo_kin -e main.py -a \"--epochs 12\" -m \"make demo\""
name=$("$NSML" run -d demo_kin -e main.py -a "--epochs 12" -m "make demo" --json \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["name"])')
echo "Session $name started."
echo
echo "\$ nsml logs -f $name"
"$NSML" logs -f "$name"
echo
echo "\$ nsml ps -a -n 5"
"$NSML" ps -a -n 5
echo
echo "\$ nsml model ls $name"
"$NSML" model ls "$name"
best=$("$NSML" model ls "$name" --json | python3 -c '
import json, sys
checkpoints = json.load(sys.stdin)
print(max(checkpoints, key=lambda c: (c["summary"] or {}).get("valid/accuracy", 0))["name"])')
echo
echo "\$ nsml submit $name $best -t    # predictions for 10 test inputs, no score posted"
"$NSML" submit "$name" "$best" -t
echo
echo "\$ nsml submit $name $best"
"$NSML" submit "$name" "$best"
echo
echo "\$ nsml board demo_kin"
"$NSML" board demo_kin
status=$("$NSML" ps -a --json | python3 -c "import json, sys; print(next(s['status'] for s in json.load(sys.stdin) if s['name'] == '$name'))")
if [ "$status" != "exited" ]; then
  echo "demo session ended as '$status'" >&2
  exit 1
fi
echo
echo "The platform keeps running in the background (\`nsml server stop\` stops it)."

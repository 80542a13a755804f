#!/usr/bin/env bash
# `make demo`: the 2018 workflow on the embedded platform, end to end.
set -euo pipefail
NSML=${NSML:-nsml}
cd "$(dirname "$0")/kin_mlp"

echo "\$ nsml dataset ls"
"$NSML" dataset ls
echo
echo "\$ nsml run -d demo_kin -e main.py -a \"--epochs 8\" -m \"make demo\""
name=$("$NSML" run -d demo_kin -e main.py -a "--epochs 8" -m "make demo" --json \
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
status=$("$NSML" ps -a --json | python3 -c "import json, sys; print(next(s['status'] for s in json.load(sys.stdin) if s['name'] == '$name'))")
if [ "$status" != "exited" ]; then
  echo "demo session ended as '$status'" >&2
  exit 1
fi
echo
echo "The platform keeps running in the background (\`nsml server stop\` stops it)."

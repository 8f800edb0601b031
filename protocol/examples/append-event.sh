#!/usr/bin/env bash
# Append one event to a factory's execution log with nothing but git and bash.
#
#   usage: append-event.sh KIND TEXT [ACTOR]      (run inside the repository)
#
# This is the plain-git client of protocol/SPEC.md, section "Writing a record with
# plain git": make an id, write the record as a blob, build the new tree in a
# throw-away index, commit it on top of the factory branch, and move the branch with
# a compare-and-swap (`git update-ref NEW OLD`). The user's HEAD, index and working
# tree are never touched. If the swap fails, another writer won: run it again.
set -euo pipefail

kind=$1 text=$2 actor=${3:-human/shell}

# The id: 10 characters of milliseconds + 16 random characters, lowercase Crockford base32.
alphabet=0123456789abcdefghjkmnpqrstvwxyz
ms=$(date +%s%3N)
id=""
for _ in $(seq 10); do id=${alphabet:$((ms % 32)):1}$id; ms=$((ms / 32)); done
for _ in $(seq 16); do id=$id${alphabet:$((RANDOM % 32)):1}; done

time=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
path=.factory/log/${id:0:4}/${id:4:1}/${id:5:1}/${id:6:1}/${id:7:1}/$id.json
json_string() { printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"; }
record=$(printf '{"id": "%s", "kind": %s, "actor": %s, "time": "%s", "task": null, "text": %s, "data": {}}' \
  "$id" "$(json_string "$kind")" "$(json_string "$actor")" "$time" "$(json_string "$text")")

parent=$(git rev-parse --verify refs/heads/factory)
export GIT_INDEX_FILE
GIT_INDEX_FILE=$(mktemp -u "${TMPDIR:-/tmp}/factory-index.XXXXXX")
trap 'rm -f "$GIT_INDEX_FILE"' EXIT
git read-tree "$parent"
blob=$(printf '%s\n' "$record" | git hash-object -w --stdin)
git update-index --add --cacheinfo "100644,$blob,$path"
tree=$(git write-tree)
commit=$(printf 'log: %s by %s\n\nFactory-Record: event %s\n' "$kind" "$actor" "$id" \
  | git commit-tree "$tree" -p "$parent")
git update-ref -m "plain git: append $id" refs/heads/factory "$commit" "$parent"
echo "$id"

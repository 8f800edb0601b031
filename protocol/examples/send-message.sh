#!/usr/bin/env bash
# Send a message to a factory mailbox with nothing but git and bash.
#
#   usage: send-message.sh TO SUBJECT [FROM] < body.md      (run inside the repository)
#
# TO is role/name, role/* or human/name; SUBJECT is one line; FROM defaults to
# human/shell. The body is read from standard input (markdown). This writes the
# message record of protocol/SPEC.md section 13 with the plain-git recipe of section
# 8: a throw-away index, a commit on top of the factory branch, and a
# compare-and-swap of the branch.
# The user's HEAD, index and working tree are never touched. If the swap fails,
# another writer won: run it again. `gitfactory mail ingest` (or the daemon) later
# writes the delivery receipt; the message is in the inbox as soon as it is committed.
set -euo pipefail

to=$1 subject=$2 from=${3:-human/shell}
body=$(cat)

alphabet=0123456789abcdefghjkmnpqrstvwxyz
ms=$(date +%s%3N)
id=""
for _ in $(seq 10); do id=${alphabet:$((ms % 32)):1}$id; ms=$((ms / 32)); done
for _ in $(seq 16); do id=$id${alphabet:$((RANDOM % 32)):1}; done

created=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
path=.factory/mail/${id:0:4}/${id:4:1}/${id:5:1}/${id:6:1}/${id:7:1}/$id.md
json_string() { printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"; }

parent=$(git rev-parse --verify refs/heads/factory)
export GIT_INDEX_FILE
GIT_INDEX_FILE=$(mktemp -u "${TMPDIR:-/tmp}/factory-index.XXXXXX")
trap 'rm -f "$GIT_INDEX_FILE"' EXIT
git read-tree "$parent"
blob=$(
  {
    printf -- '---\n'
    printf 'id: "%s"\n' "$id"
    printf 'from: %s\n' "$(json_string "$from")"
    printf 'to: [%s]\n' "$(json_string "$to")"
    printf 'subject: %s\n' "$(json_string "$subject")"
    printf 'created: "%s"\n' "$created"
    printf -- '---\n\n%s\n' "$body"
  } | git hash-object -w --stdin
)
git update-index --add --cacheinfo "100644,$blob,$path"
tree=$(git write-tree)
commit=$(printf 'mail: %s to %s: %s\n\nFactory-Record: message %s\n' "$from" "$to" "$subject" "$id" \
  | git commit-tree "$tree" -p "$parent")
git update-ref -m "plain git: message $id" refs/heads/factory "$commit" "$parent"
echo "$id"

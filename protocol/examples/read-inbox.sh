#!/usr/bin/env bash
# List the messages addressed to an agent with nothing but git and bash.
#
#   usage: read-inbox.sh ADDRESS        (run inside the repository; e.g. coder/ada)
#
# Prints one line per message to ADDRESS or to its role (role/*), oldest first:
# "<id> <from> <subject>". Message ids sort by time, so file order is date order.
# Reads messages in the form gitfactory and send-message.sh write (one
# `key: <JSON value>` per front-matter line); `git show factory:<path>` prints one.
# Reading with plain git records nothing: to record that you read a message, commit
# a mail.read event (append-event.sh, with data {"message": ID}) or use
# `gitfactory mail read`.
set -euo pipefail

address=$1
role_all="${address%%/*}/*"
field() { sed -n "s/^$1: \"\\(.*\\)\"\$/\\1/p" | head -n 1 | sed -e 's/\\"/"/g' -e 's/\\\\/\\/g'; }

git ls-tree -r --name-only refs/heads/factory -- .factory/mail | sort -t/ -k8 | while read -r path; do
  record=$(git cat-file -p "refs/heads/factory:$path")
  header=$(printf '%s\n' "$record" | sed -n '2,/^---$/p')
  recipients=$(printf '%s\n' "$header" | grep -E '^(to|cc): ' || true)
  if printf '%s' "$recipients" | grep -qF -e "\"$address\"" -e "\"$role_all\""; then
    id=$(printf '%s\n' "$header" | field id)
    from=$(printf '%s\n' "$header" | field from)
    subject=$(printf '%s\n' "$header" | field subject)
    printf '%s %s %s\n' "$id" "$from" "$subject"
  fi
done

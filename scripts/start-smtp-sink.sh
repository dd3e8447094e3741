#!/usr/bin/env bash
# start-smtp-sink.sh DIR PORT      start Postfix's smtp-sink on 127.0.0.1:PORT
# start-smtp-sink.sh --stop DIR    stop it
#
# smtp-sink accepts every message and throws it away (no queue, no disk): the receiving end of a
# relay benchmark that should measure only the sender. Pid file and log in DIR. Comes with the
# Debian package postfix (no Postfix instance needs to run). Prints the pid on success.
set -euo pipefail
usage="usage: start-smtp-sink.sh DIR PORT | start-smtp-sink.sh --stop DIR"
export PATH=$PATH:/usr/sbin:/sbin
if [ "${1:-}" = --stop ]; then
  DIR=${2:?$usage}
  pid=$(cat "$DIR/smtp-sink.pid" 2>/dev/null || true)
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || exit 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
  echo "start-smtp-sink.sh: pid $pid still running" >&2
  exit 1
fi
DIR=${1:?$usage} PORT=${2:?$usage}
command -v smtp-sink >/dev/null || { echo "start-smtp-sink.sh: smtp-sink is not installed (Debian: postfix)" >&2; exit 2; }
mkdir -p "$DIR"
user=(); [ "$(id -u)" != 0 ] || user=(-u nobody)   # as root it must drop privileges after binding
# 256: the listen backlog. Its own session, and not the caller's standard streams.
setsid smtp-sink "${user[@]}" -h sink.bench.test "127.0.0.1:$PORT" 256 </dev/null >"$DIR/smtp-sink.log" 2>&1 &
echo $! > "$DIR/smtp-sink.pid"
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then cat "$DIR/smtp-sink.pid"; exit 0; fi
  kill -0 "$(cat "$DIR/smtp-sink.pid")" 2>/dev/null || break
  sleep 0.1
done
echo "start-smtp-sink.sh: smtp-sink did not listen on 127.0.0.1:$PORT:" >&2
cat "$DIR/smtp-sink.log" >&2
exit 1

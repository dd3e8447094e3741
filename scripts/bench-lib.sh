# Helpers sourced by the bench scripts (not run directly).
# Reference peers (Dovecot, Postfix, smtp-sink) and download clients (fetchmail, mbsync) are
# optional: a bench asks have_peer before each comparison and skips it, with one line saying which
# Debian package would enable it, when the program is missing. SKIP_PEERS="dovecot postfix ..."
# treats the listed programs as missing (to check a bench's output without them).
export PATH=$PATH:/usr/sbin:/sbin

# free_port: a free TCP port on 127.0.0.1 (binds port 0 and prints what the kernel picked).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT [SECONDS=10]: until 127.0.0.1:PORT accepts a connection.
wait_port() {
  local _; for _ in $(seq $(( ${2:-10} * 10 ))); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on 127.0.0.1:$1" >&2; return 1
}

# median: the median of the numbers on stdin, one a line.
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

# have_peer PROGRAM PACKAGE WHAT: true when PROGRAM (a name on PATH or a path) is installed and
# neither it nor PACKAGE is listed in SKIP_PEERS; otherwise prints "skipped: WHAT (apt-get install
# PACKAGE)" and is false. Postfix also needs root.
have_peer() {
  local prog=$1 pkg=$2 what=$3 skip=${SKIP_PEERS:-} missing= path
  # command -v also names a file on PATH that cannot be run: ask for an executable one.
  path=$(command -v "$prog" 2>/dev/null) && [ -x "$path" ] || missing=1
  case " ${skip//,/ } " in *" ${prog##*/} "*|*" $pkg "*) missing=1 ;; esac
  if [ -n "$missing" ]; then echo "skipped: $what (apt-get install $pkg)"; return 1; fi
  if [ "$prog" = postfix ] && [ "$(id -u)" != 0 ]; then echo "skipped: $what (a private Postfix needs root)"; return 1; fi
  return 0
}

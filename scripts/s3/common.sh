# Shared by scripts/s3/start and scripts/s3/stop (sourced; expects $dir and $conf).
# The daemons of a cluster are known only by the pid files they wrote in "$dir/run"; a pid counts
# as ours only when /proc/PID/cmdline is that binary started with this directory's ceph.conf, so a
# reused pid is never signalled.

daemon_pid_files=(mon.only.pid:ceph-mon osd.0.pid:ceph-osd client.rgw.ferry.pid:radosgw)

# running_pid BINARY PIDFILE: prints the pid when it is alive and ours.
running_pid() {
  local binary=$1 file=$2 pid args
  [[ -r $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  args=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $(basename "$(head -n 1 <<<"$args")") == "$binary" ]] || return 1
  grep -qxF -- "$conf" <<<"$args" || return 1
  echo "$pid"
}

all_running() {
  local entry
  for entry in "${daemon_pid_files[@]}"; do
    running_pid "${entry#*:}" "$dir/run/${entry%%:*}" >/dev/null || return 1
  done
}

any_running() {
  local entry
  for entry in "${daemon_pid_files[@]}"; do
    running_pid "${entry#*:}" "$dir/run/${entry%%:*}" >/dev/null && return 0
  done
  return 1
}

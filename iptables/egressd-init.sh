#!/bin/sh
# Entry point for the egressd init container (or a node agent acting for a pod):
# installs the pod's egress rules, or removes them with --cleanup.
#
#   egressd-init.sh [--dry-run] [--cleanup] [egressd init flags...]
#
# Settings come from flags or the EGRESSD_* variables `egressd init --help` lists.
# Two more, for this script only:
#   EGRESSD_BIN    the egressd executable (default: egressd on PATH)
#   EGRESSD_NETNS  a network namespace file to enter first, e.g. /proc/<pid>/ns/net
#                  or /run/netns/<name> (default: stay in the current one, which in
#                  an init container is the pod's)
#
# Needs CAP_NET_ADMIN (and CAP_NET_RAW for some iptables builds) in that namespace.
# Exit status is egressd's: 0 applied, 1 iptables missing or refused (nothing
# changed), 2 bad flags or values.
set -eu

bin="${EGRESSD_BIN:-egressd}"

if [ -n "${EGRESSD_NETNS:-}" ]; then
  if [ ! -e "$EGRESSD_NETNS" ]; then
    echo "egressd-init: EGRESSD_NETNS=$EGRESSD_NETNS does not exist" >&2
    exit 2
  fi
  exec nsenter --net="$EGRESSD_NETNS" -- "$bin" init "$@"
fi

exec "$bin" init "$@"

#!/bin/sh
# One $project server per CPU core on consecutive ports, behind nginx:
#   sudo scripts/multicore.sh install    # install $modname@.service, start the instances
#   sudo scripts/multicore.sh remove     # stop and disable them
#   scripts/multicore.sh upstream        # the nginx "upstream" block for them
#   scripts/multicore.sh ports           # the ports, one per line
# INSTANCES (default: the number of CPU cores) and FIRST_PORT (9901) choose
# the ports: sudo INSTANCES=2 FIRST_PORT=8001 scripts/multicore.sh install
set -eu

here=$(cd "$(dirname "$0")" && pwd)
instances=${INSTANCES:-$(nproc)}
first_port=${FIRST_PORT:-9901}

ports() {
    i=0
    while [ "$i" -lt "$instances" ]; do
        echo $((first_port + i))
        i=$((i + 1))
    done
}

case "${1:-}" in
install)
    install -m 0644 "$here/$modname@.service" /etc/systemd/system/
    systemctl daemon-reload
    for port in $(ports); do
        systemctl enable --now "$modname@$port.service"
    done
    ;;
remove)
    for port in $(ports); do
        systemctl disable --now "$modname@$port.service"
    done
    ;;
upstream)
    echo "upstream $modname {"
    for port in $(ports); do
        echo "    server 127.0.0.1:$port;"
    done
    echo "}"
    ;;
ports)
    ports
    ;;
*)
    sed -n '2,9p' "$0" >&2
    exit 2
    ;;
esac

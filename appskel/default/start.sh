#!/bin/sh
# Run $project in the foreground, for development:
#   ./start.sh                      # port and address from $modname.conf
#   ./start.sh -p 8000 -l 0.0.0.0   # any option of "twistd $modname"
# twistd only finds twisted/plugins/${modname}_plugin.py when this directory
# is on sys.path: the twistd command does not add the current directory.
cd "$(dirname "$0")" || exit 1
PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" exec twistd -n $modname "$@"

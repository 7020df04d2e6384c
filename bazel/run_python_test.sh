#!/bin/sh
# Runs a Python op test: $1 = script, $2 = libindexgrad.so.
set -eu
exec /usr/bin/python3 -B "$1" "$2"

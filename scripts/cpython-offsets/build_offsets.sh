#!/bin/sh
# Build and run offsets.c against every local interpreter's headers.
set -e
cd "$(dirname "$0")"
for v in 3.8.18 3.9.18 3.10.13 3.11.7 3.12.1 3.13.0; do
  m=${v%.*}; I=/root/.pyenv/versions/$v/include/python$m
  cc -O0 -w -DPy_BUILD_CORE -I$I -I$I/internal offsets.c -o offsets-$v
  ./offsets-$v > offsets-$v.txt
done
# Debian python3.11 (3.11.2)
I=/usr/include/python3.11
cc -O0 -w -DPy_BUILD_CORE -I$I -I$I/internal offsets.c -o offsets-debian-3.11.2
./offsets-debian-3.11.2 > offsets-debian-3.11.2.txt

#!/bin/sh
# Start target.py under each interpreter, wait for its report, SIGSTOP it,
# run walker.py (as root) against it, then kill it.
cd "$(dirname "$0")"
for py in /root/.pyenv/versions/3.8.18/bin/python3.8 /root/.pyenv/versions/3.9.18/bin/python3.9 \
          /root/.pyenv/versions/3.10.13/bin/python3.10 /root/.pyenv/versions/3.11.7/bin/python3.11 \
          /usr/bin/python3.11 /root/.pyenv/versions/3.12.1/bin/python3.12 /root/.pyenv/versions/3.13.0/bin/python3.13; do
  echo "################ $py"
  rm -f report.json
  $py target.py > report.json &
  pid=$!
  for i in $(seq 50); do [ -s report.json ] && break; sleep 0.1; done
  sleep 0.2
  kill -STOP $pid
  /usr/bin/python3.11 walker.py $pid report.json
  kill -KILL $pid; wait $pid 2>/dev/null
done

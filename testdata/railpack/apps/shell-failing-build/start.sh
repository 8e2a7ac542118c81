#!/bin/sh
# kibaship fixture: railpack's shell provider runs this file (`sh start.sh`).
echo "hello from the kibaship shell fixture"

#!/bin/sh
# npm's install step: compiles egressd's native addon (binding.gyp, src/core/original-dst.c) with
# node-gyp against the headers that ship with the Node running npm (<prefix>/include/node, in
# Debian's package and in nodejs.org's archives alike), so that node-gyp never downloads them:
# CI and image builds run offline.
set -e
prefix=$(node -p "require('node:path').resolve(process.execPath, '../..')")
exec node-gyp rebuild --nodedir="$prefix"

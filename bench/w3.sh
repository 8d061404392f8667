#!/bin/sh
# W3, the char LSTM, beside PyTorch: see bench/textgen.sh.
exec sh "$(dirname "$0")/textgen.sh" w3 "$@"

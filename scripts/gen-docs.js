#!/usr/bin/env node
// Writes the generated reference pages (docs/reference/*.md) from the compiled code in dist/ (`npm run docs:gen`
// builds first). test/unit/docs.test.ts regenerates them in memory and fails when a committed page differs.
'use strict';
const { mkdirSync, writeFileSync, readFileSync, existsSync } = require('node:fs');
const { dirname, join } = require('node:path');

const root = join(__dirname, '..');
const { generatedPages } = require(join(root, 'dist/src/docs/pages.js'));

generatedPages(root).then(
  (pages) => {
    for (const p of pages) {
      const file = join(root, p.path);
      const same = existsSync(file) && readFileSync(file, 'utf8') === p.content;
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, p.content);
      console.log(`${same ? 'unchanged' : 'wrote    '} ${p.path}`);
    }
  },
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(__dirname, '../..');

describe('the product build', () => {
  it('compiles src/, activities/ and workflows/ only: nothing of the test bed, the tests or the benches', () => {
    const files = execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json', '--listFilesOnly'], {
      cwd: root,
      encoding: 'utf8',
    })
      .split('\n')
      .map((f) => relative(root, f.trim()))
      .filter((f) => f && !f.startsWith('node_modules/') && !f.startsWith('..'));
    expect(files.length).toBeGreaterThan(50);
    expect(files.filter((f) => !/^(src|activities|workflows)\//.test(f))).toEqual([]);
  });
});

describe('the workflow bundle', () => {
  it("carries the workflows and the SDK, not @temporalio/proto's descriptors or protobufjs (each workflow isolate would hold them)", () => {
    // Built by scripts/ensure-deps.sh before any test runs (scripts/bundle-workflows.js).
    const bundle = readFileSync(join(root, 'dist/workflow-bundle.js'), 'utf8');
    const modules = [...bundle.matchAll(/^\/\*\*\*\/ "\.\/node_modules\/((?:@[^/]+\/)?[^/]+)\//gm)].map((m) => m[1]);
    expect(modules).toContain('@temporalio/workflow');
    expect([...new Set(modules)].filter((m) => m === '@temporalio/proto' || m === 'protobufjs')).toEqual([]);
  });
});

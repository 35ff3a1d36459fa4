import { execFileSync } from 'node:child_process';
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

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The kubelet fixture runs as its own process inside a node, so it needs plain JavaScript: the compiled file when
 * running from dist/, otherwise the TypeScript source transpiled on the fly (tests run from source under ts-jest).
 * The copy written to the node requires `yaml` by absolute path, since it lives outside this repo.
 */
export async function kubeletFixtureScript(): Promise<string> {
  const compiled = join(__dirname, 'kubelet-fixture.js');
  const yamlPath = require.resolve('yaml');
  let js: string;
  if (existsSync(compiled)) {
    js = await readFile(compiled, 'utf8');
  } else {
    const ts = await import('typescript'); // dev dependency: only needed when running from source
    const source = await readFile(join(__dirname, 'kubelet-fixture.ts'), 'utf8');
    js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText;
  }
  return js.replace(/require\("yaml"\)/g, `require(${JSON.stringify(yamlPath)})`);
}

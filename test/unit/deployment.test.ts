import { createHash } from 'node:crypto';
import { parseConfig } from '../../src/config/load';
import { deploymentOptions, workerDeployment } from '../../src/temporal/deployment';
import { engineVersion } from '../../src/version';

/** Worker Versioning's settings (src/temporal/deployment.ts): off by default, its build id, its bad input. */
describe('worker deployment (Worker Versioning)', () => {
  const config = (deployment?: unknown) => parseConfig({ temporal: deployment ? { deployment } : {} }, 'test config');
  const code = 'the workflow bundle';
  const hash = createHash('sha256').update(code).digest('hex').slice(0, 12);

  it('is off unless a deployment name is set: nothing changes for users who do not opt in', () => {
    expect(workerDeployment(config(), code, {})).toBeUndefined();
    expect(workerDeployment(config(), undefined, {})).toBeUndefined();
  });

  it('derives the build id from the package version and the bundle, so it changes exactly when the workflow code does', () => {
    const d = workerDeployment(config({ name: 'lifeboat' }), code, {});
    expect(d).toEqual({ deploymentName: 'lifeboat', buildId: `${engineVersion()}-${hash}` });
    expect(workerDeployment(config({ name: 'lifeboat' }), `${code} changed`, {})!.buildId).not.toBe(d!.buildId);
    expect(deploymentOptions(d!)).toEqual({
      useWorkerVersioning: true,
      version: { deploymentName: 'lifeboat', buildId: d!.buildId },
      defaultVersioningBehavior: 'AUTO_UPGRADE',
    });
  });

  it('takes the name and build id from the environment over the file', () => {
    expect(
      workerDeployment(config({ name: 'a', buildId: 'b1' }), code, { LIFEBOAT_DEPLOYMENT_NAME: 'x', LIFEBOAT_BUILD_ID: 'y2' }),
    ).toEqual({
      deploymentName: 'x',
      buildId: 'y2',
    });
    expect(workerDeployment(config(), code, { LIFEBOAT_DEPLOYMENT_NAME: 'x' })).toEqual({
      deploymentName: 'x',
      buildId: `${engineVersion()}-${hash}`,
    });
  });

  it('refuses bad input early, naming the field and the fix', () => {
    expect(() => config({ name: 'life.boat' })).toThrow(/temporal\.deployment\.name.*expected letters, digits, - and _/s);
    expect(() => config({ name: 'lifeboat', buildId: 'a b' })).toThrow(/temporal\.deployment\.buildId/);
    expect(() => config({ name: 'lifeboat', extra: 1 })).toThrow(/extra/);
    expect(() => workerDeployment(config(), code, { LIFEBOAT_DEPLOYMENT_NAME: 'a.b' })).toThrow(/^LIFEBOAT_DEPLOYMENT_NAME: expected/);
    expect(() => workerDeployment(config({ name: 'l' }), code, { LIFEBOAT_BUILD_ID: 'a/b' })).toThrow(/^LIFEBOAT_BUILD_ID: expected/);
    expect(() => workerDeployment(config({ name: 'l' }), undefined, {})).toThrow(
      /temporal\.deployment\.buildId: required when the worker runs from source.*LIFEBOAT_BUILD_ID/,
    );
  });
});

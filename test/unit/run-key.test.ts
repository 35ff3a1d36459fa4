import { runKeyOf } from '../../workflows/run-key';

describe('runKeyOf', () => {
  it('tells apart runs started in the same minute (UUIDv7 run ids share their leading timestamp)', () => {
    const a = runKeyOf('01a2130b-411f-7650-ab70-65a516a7085f');
    const b = runKeyOf('01a2130b-4a02-7d11-9c3e-0f41b2c9e7a1');
    expect(a).toBe('65a516a7085f');
    expect(b).not.toBe(a);
    expect(a).toMatch(/^[0-9a-f]{12}$/);
  });
});

import { createHash } from 'node:crypto';
import { compositeChecksum, formatChecksum, parseChecksum, partDigest, reportedChecksum } from '../../src/storage/checksum';

describe('bucket checksums as manifests record them', () => {
  it('round-trips CRC32 with its prefix, and reads a bare value (older manifests) as SHA-256', () => {
    expect(parseChecksum(formatChecksum({ algorithm: 'CRC32', value: 'OQfb3A==-237' }))).toEqual({
      algorithm: 'CRC32',
      value: 'OQfb3A==-237',
    });
    expect(formatChecksum({ algorithm: 'SHA256', value: 'abc=' })).toBe('abc=');
    expect(parseChecksum('abc=-3')).toEqual({ algorithm: 'SHA256', value: 'abc=-3' });
  });

  it('compares against the field of the recorded algorithm only', () => {
    const head = { ChecksumCRC32: 'c', ChecksumSHA256: 's' };
    expect(reportedChecksum(head, 'CRC32')).toBe('c');
    expect(reportedChecksum(head, 'SHA256')).toBe('s');
    expect(reportedChecksum({}, 'CRC32')).toBeUndefined();
  });

  it('digests parts as S3 does: CRC32 big-endian (the IEEE check value), SHA-256 raw; composites over the concatenation', () => {
    expect(partDigest('CRC32', Buffer.from('123456789')).toString('hex')).toBe('cbf43926');
    const a = Buffer.from('a');
    expect(partDigest('SHA256', a)).toEqual(createHash('sha256').update(a).digest());
    const parts = [partDigest('CRC32', Buffer.from('x')), partDigest('CRC32', Buffer.from('y'))];
    expect(compositeChecksum('CRC32', parts)).toBe(`${partDigest('CRC32', Buffer.concat(parts)).toString('base64')}-2`);
  });
});

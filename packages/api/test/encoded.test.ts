import { describe, expect, it } from 'vitest';
import { encodedMessage, encodeResponse, isEncodedMessage, images } from '../src/index.js';

describe('pre-encoded responses', () => {
  it('pass through as bytes; everything else is encoded, nothing as the empty message', () => {
    const bytes = images.ListImagesResponse.encode({ images: [{ name: 'a' }] });
    const wrapped = encodedMessage(bytes);
    expect(isEncodedMessage(wrapped)).toBe(true);
    expect(isEncodedMessage({ bytes })).toBe(false);
    expect(encodeResponse(images.ListImagesResponse, wrapped)).toBe(bytes);
    expect(Buffer.from(encodeResponse(images.ListImagesResponse, { images: [{ name: 'a' }] }))).toEqual(Buffer.from(bytes));
    expect(encodeResponse(images.ListImagesResponse, undefined).length).toBe(0);
  });
});

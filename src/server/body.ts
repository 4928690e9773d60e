// Request bodies: read with a byte limit (413 past it, without buffering the excess)
// and parsed as JSON with a 400 that says what was wrong.
import type { IncomingMessage } from 'node:http';
import { HttpError } from './http-errors.js';

export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume(); // discard; the connection stays usable for the error reply
    throw new HttpError(413, 'payload_too_large', `request body of ${declared} bytes exceeds the limit of ${limit} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      throw new HttpError(413, 'payload_too_large', `request body exceeds the limit of ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** Reads and parses a JSON body; an empty body yields `emptyValue`. */
export async function readJson(req: IncomingMessage, limit: number, emptyValue: unknown = undefined): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type && !/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
    req.resume();
    throw new HttpError(415, 'unsupported_media_type', `expected Content-Type application/json, got ${type}`);
  }
  const body = await readBody(req, limit);
  if (body.length === 0) return emptyValue;
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw new HttpError(400, 'invalid_json', `request body is not valid JSON: ${(err as Error).message}`);
  }
}

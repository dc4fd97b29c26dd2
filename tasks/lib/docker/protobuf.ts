// The little of the protobuf wire format the BuildKit session needs: messages whose fields are
// strings, bytes, varints and nested messages.

export type Field = { number: number; varint: bigint } | { number: number; bytes: Buffer };

function varint(value: bigint): Buffer {
  const out: number[] = [];
  let v = value;
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return Buffer.from(out);
}

/** One field: a number is a varint, a string or Buffer length-delimited. */
export function field(number: number, value: number | string | Buffer): Buffer {
  if (typeof value === 'number') return Buffer.concat([varint(BigInt(number << 3)), varint(BigInt(value))]);
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  return Buffer.concat([varint(BigInt((number << 3) | 2)), varint(BigInt(bytes.length)), bytes]);
}

/** The fields of a message, in order; malformed input throws. */
export function decode(message: Buffer): Field[] {
  const fields: Field[] = [];
  let at = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (at >= message.length || shift > 63n) throw new Error('malformed protobuf varint');
      const byte = message[at++];
      result |= BigInt(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return result;
    }
  };
  while (at < message.length) {
    const key = readVarint();
    const number = Number(key >> 3n);
    switch (Number(key & 7n)) {
      case 0:
        fields.push({ number, varint: readVarint() });
        break;
      case 2: {
        const length = Number(readVarint());
        if (at + length > message.length) throw new Error('malformed protobuf: a field runs past the message');
        fields.push({ number, bytes: message.subarray(at, at + length) });
        at += length;
        break;
      }
      case 1:
        at += 8;
        break;
      case 5:
        at += 4;
        break;
      default:
        throw new Error('malformed protobuf: unknown wire type');
    }
  }
  return fields;
}

/** The last length-delimited field of that number (proto3: the last one wins), as text. */
export function text(fields: Field[], number: number): string {
  const found = fields.filter((f): f is { number: number; bytes: Buffer } => f.number === number && 'bytes' in f).pop();
  return found ? found.bytes.toString('utf8') : '';
}

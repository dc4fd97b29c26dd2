import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { InvalidReferenceError } from '../../tasks/lib/errors';
import {
  type ImageReference,
  familiarName,
  formatReference,
  isDigest,
  isLoopbackRegistry,
  isValidTag,
  parseReference,
  pinnedReference,
  registryBaseUrl,
  repositoryName,
  sameRepository,
  validateTag,
  withDigest,
  withTag,
} from '../../tasks/lib/reference';
import { D256, D384, D512, HEX64, INVALID, VALID, generated, referenceLike } from '../support/reference-cases';

function expected(domain: string, path: string, tag?: string, digest?: string): ImageReference {
  const ref: ImageReference = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

describe('parseReference: valid references', () => {
  for (const [input, domain, path, tag, digest] of VALID) {
    test(JSON.stringify(input.length > 70 ? `${input.slice(0, 70)}…` : input), () => {
      const ref = parseReference(input);
      assert.deepEqual(ref, expected(domain, path, tag, digest));
      assert.deepEqual(parseReference(formatReference(ref)), ref);
      assert.deepEqual(parseReference(familiarName(ref)), ref);
    });
  }
});

describe('parseReference: invalid references', () => {
  for (const [input, ...fragments] of INVALID) {
    test(JSON.stringify(input.length > 70 ? `${input.slice(0, 70)}…` : input), () => {
      assert.throws(
        () => parseReference(input, "Input 'images'"),
        (err: unknown) => {
          assert.ok(err instanceof InvalidReferenceError, `expected InvalidReferenceError, got ${String(err)}`);
          assert.ok(err.message.startsWith("Input 'images': the image reference '"), err.message);
          for (const fragment of fragments) assert.ok(err.message.includes(fragment), `${JSON.stringify(fragment)} not in: ${err.message}`);
          assert.ok(!/[\n\r]/.test(err.message), 'message must stay on one line');
          return true;
        },
      );
    });
  }
});

test('the table is large enough', () => {
  assert.ok(VALID.length + INVALID.length >= 100, `${VALID.length + INVALID.length} cases`);
});

describe('messages', () => {
  test('quote the full reference and say what to do', () => {
    assert.throws(() => parseReference('team/MyApp:1'), {
      name: 'InvalidReferenceError',
      message: "The image reference 'team/MyApp:1' is not valid: uppercase letters in the repository 'team/MyApp' are not allowed; use 'team/myapp'.",
    });
  });
  test('a line break cannot start a new log line', () => {
    assert.throws(() => parseReference('app\n##vso[task.setvariable variable=x]y'), (err: Error) => {
      assert.ok(!err.message.includes('\n'));
      assert.ok(err.message.includes("'app\\n##vso["));
      return true;
    });
  });
  test('non-string input is refused cleanly', () => {
    assert.throws(() => parseReference(undefined as unknown as string), InvalidReferenceError);
  });
});

describe('formatting', () => {
  const hub = parseReference(`busybox:1.36@${D256}`);
  test('repositoryName is always full', () => {
    assert.equal(repositoryName(parseReference('busybox')), 'docker.io/library/busybox');
    assert.equal(repositoryName(parseReference('localhost:5000/app:1')), 'localhost:5000/app');
  });
  test('formatReference keeps tag and digest', () => {
    assert.equal(formatReference(hub), `docker.io/library/busybox:1.36@${D256}`);
    assert.equal(formatReference(parseReference('user/app')), 'docker.io/user/app');
  });
  const familiar: [string, string][] = [
    ['busybox:1.36', 'busybox:1.36'],
    ['docker.io/library/busybox', 'busybox'],
    ['index.docker.io/user/app', 'user/app'],
    ['library/a/b', 'library/a/b'],
    ['localhost:5000/app:1', 'localhost:5000/app:1'],
    ['[::1]:5000/app', '[::1]:5000/app'],
    ['myacr.azurecr.io/team/app', 'myacr.azurecr.io/team/app'],
    ['docker.io/a.b/c', 'docker.io/a.b/c'], // 'a.b/c' alone would name the registry 'a.b'
    [`docker.io/sha256:${HEX64}`, `docker.io/library/sha256:${HEX64}`], // 'sha256:<hex>' alone is refused
    [`docker.io/${HEX64}`, `docker.io/library/${HEX64}`], // an image ID alone is refused
    [`busybox@${D256}`, `busybox@${D256}`],
  ];
  for (const [input, short] of familiar) {
    test(`familiarName(${input}) = ${short.slice(0, 40)}`, () => assert.equal(familiarName(parseReference(input)), short));
  }
});

describe('withTag, withDigest, pinnedReference', () => {
  const ref = parseReference(`myacr.azurecr.io/team/app:1@${D256}`);
  test('withTag replaces the tag and drops the digest', () => {
    assert.deepEqual(withTag(ref, '2'), { domain: 'myacr.azurecr.io', path: 'team/app', tag: '2' });
  });
  test('withTag validates the tag', () => {
    assert.throws(() => withTag(ref, 'bad tag', "Input 'tags'"), /^InvalidReferenceError: Input 'tags': the tag 'bad tag' contains whitespace/);
  });
  test('withDigest keeps the tag', () => {
    const d = `sha256:${'0'.repeat(64)}`;
    assert.deepEqual(withDigest(ref, d), { domain: 'myacr.azurecr.io', path: 'team/app', tag: '1', digest: d });
    assert.deepEqual(withDigest(parseReference('app'), d), { domain: 'docker.io', path: 'library/app', digest: d });
  });
  test('withDigest validates the digest', () => {
    assert.throws(() => withDigest(ref, 'sha256:abc'), /the digest 'sha256:abc' must be sha256: followed by 64 hex digits/i);
    assert.throws(() => withDigest(ref, ''), InvalidReferenceError);
  });
  test('pinnedReference drops the tag', () => {
    assert.equal(pinnedReference(ref, D512), `myacr.azurecr.io/team/app@${D512}`);
    assert.equal(pinnedReference(parseReference('busybox:1'), D256), `docker.io/library/busybox@${D256}`);
    assert.throws(() => pinnedReference(ref, 'latest'), InvalidReferenceError);
  });
  test('inputs are not modified', () => {
    assert.deepEqual(ref, { domain: 'myacr.azurecr.io', path: 'team/app', tag: '1', digest: D256 });
  });
});

describe('sameRepository', () => {
  const cases: [string, string, boolean][] = [
    ['busybox', 'docker.io/library/busybox:1', true],
    ['busybox:1', `index.docker.io/library/busybox@${D256}`, true],
    ['user/app', 'docker.io/user/app', true],
    ['MyReg.io/app', 'myreg.io/app', true],
    ['localhost:5000/app', 'localhost:5001/app', false],
    ['localhost:5000/app', 'localhost:5000/app2', false],
    ['busybox', 'user/busybox', false],
  ];
  for (const [a, b, same] of cases) {
    test(`${a} ~ ${b.slice(0, 40)}: ${same}`, () => assert.equal(sameRepository(parseReference(a), parseReference(b)), same));
  }
  test('hand-built references with the legacy Hub name', () => {
    assert.ok(sameRepository({ domain: 'index.docker.io', path: 'library/x' }, { domain: 'docker.io', path: 'library/x' }));
  });
});

describe('tags and digests', () => {
  test('isValidTag', () => {
    for (const t of ['1', 'latest', '_x', 'A.b-C_d', 'x'.repeat(128)]) assert.ok(isValidTag(t), t);
    for (const t of ['', '.x', '-x', 'a b', 'a:b', 'a/b', 'x'.repeat(129), 'é']) assert.ok(!isValidTag(t), t);
  });
  test('validateTag returns the tag or names the input', () => {
    assert.equal(validateTag('1.0'), '1.0');
    assert.throws(() => validateTag('Bad Tag!', "Input 'additionalTags'"), {
      name: 'InvalidReferenceError',
      message: "Input 'additionalTags': the tag 'Bad Tag!' contains whitespace; remove it.",
    });
    assert.throws(() => validateTag('bad!'), /^InvalidReferenceError: The tag 'bad!' may contain only letters, digits/);
    assert.throws(() => validateTag(''), /The tag is empty/);
    assert.throws(() => validateTag('-x'), /starts with '-'/);
  });
  test('isDigest', () => {
    for (const d of [D256, D384, D512]) assert.ok(isDigest(d), d);
    // Only what go-digest verifies: other algorithms of the OCI grammar are refused, as by Docker.
    for (const d of ['', 'sha256', 'sha256:', `sha256:${HEX64.toUpperCase()}`, `sha512:${HEX64}`, `sha384:${HEX64}`, `SHA256:${HEX64}`, 'a:b c', ':x', 'a+:b', 'constructor:x!', 'toString:x', 'sha256+b64u:abc', 'multihash+base58:QmRZ', 'a.b_c-d:x=', `sha1:${HEX64.slice(0, 40)}`, `blake3:${HEX64}`]) {
      assert.ok(!isDigest(d), d);
    }
  });
});

describe('registries', () => {
  const loopback: [string, boolean][] = [
    ['localhost', true], ['localhost:5000', true], ['LOCALHOST:5000', true],
    ['127.0.0.1', true], ['127.0.0.1:5000', true], ['127.1.2.3:80', true],
    ['[::1]', true], ['[::1]:5000', true], ['[0:0:0:0:0:0:0:1]:5000', true], ['[::0001]', true],
    ['128.0.0.1', false], ['127.0.0.256', false], ['127.0.0', false], ['[::2]', false], ['[::]', false],
    ['localhost.example.com', false], ['docker.io', false], ['myacr.azurecr.io', false], ['[::1', false],
    // names under .localhost resolve to loopback (RFC 6761)
    ['registry.localhost', true], ['registry.localhost:5000', true], ['a.b.localhost:80', true], ['Registry.LocalHost', true],
    ['notlocalhost:5000', false], ['localhost.com', false], ['localhost-registry:5000', false],
  ];
  for (const [domain, is] of loopback) test(`isLoopbackRegistry(${domain}) = ${is}`, () => assert.equal(isLoopbackRegistry(domain), is));

  const urls: [string, string][] = [
    ['docker.io', 'https://registry-1.docker.io'],
    ['index.docker.io', 'https://registry-1.docker.io'],
    ['registry-1.docker.io', 'https://registry-1.docker.io'],
    ['registry.hub.docker.com', 'https://registry-1.docker.io'],
    ['Docker.IO', 'https://registry-1.docker.io'],
    ['127.0.0.1:5000', 'http://127.0.0.1:5000'],
    ['localhost:5000', 'http://localhost:5000'],
    ['[::1]:5000', 'http://[::1]:5000'],
    ['registry.localhost:5000', 'http://registry.localhost:5000'],
    ['myacr.azurecr.io', 'https://myacr.azurecr.io'],
    ['registry.example.com:8443', 'https://registry.example.com:8443'],
  ];
  for (const [domain, url] of urls) test(`registryBaseUrl(${domain}) = ${url}`, () => assert.equal(registryBaseUrl(domain), url));
});

// ---------------------------------------------------------------------------------------------
// Properties

// Agreement with distribution/reference itself is test/unit/reference-oracle.test.ts.
describe('properties', () => {
  test('generated references parse to their parts, and format/familiarName round-trip', () => {
    fc.assert(
      fc.property(generated, ({ domain, path, tag, digest }) => {
        const text = (domain !== undefined ? `${domain}/` : '') + path + (tag !== undefined ? `:${tag}` : '') + (digest !== undefined ? `@${digest}` : '');
        const hub = domain === undefined || domain === 'docker.io' || domain === 'index.docker.io';
        const want = expected(hub ? 'docker.io' : domain, hub && !path.includes('/') ? `library/${path}` : path, tag, digest);
        fc.pre(want.path.length <= 255);
        const ref = parseReference(text);
        assert.deepEqual(ref, want);
        assert.deepEqual(parseReference(formatReference(ref)), ref);
        assert.deepEqual(parseReference(familiarName(ref)), ref);
        assert.ok(sameRepository(ref, parseReference(pinnedReference(ref, D256))));
        if (tag !== undefined) assert.deepEqual(withTag(ref, tag), expected(ref.domain, ref.path, tag));
      }),
      { numRuns: 2000 },
    );
  });

  test('arbitrary reference-like strings: refused with InvalidReferenceError, or accepted consistently', () => {
    fc.assert(
      fc.property(referenceLike, (text) => {
        let ref: ImageReference;
        try {
          ref = parseReference(text);
        } catch (err) {
          assert.ok(err instanceof InvalidReferenceError, String(err));
          assert.ok(err.message.startsWith('The image reference '), err.message);
          return;
        }
        assert.deepEqual(parseReference(formatReference(ref)), ref);
        assert.deepEqual(parseReference(familiarName(ref)), ref);
      }),
      { numRuns: 5000 },
    );
  });

  test('any string at all: only InvalidReferenceError, always on one line', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
        try {
          parseReference(text);
        } catch (err) {
          assert.ok(err instanceof InvalidReferenceError, String(err));
          assert.ok(!/[\n\r\u2028\u2029]/.test(err.message));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

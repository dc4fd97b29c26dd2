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

const HEX64 = '9a7b1e3c5d2f4a6b8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b';
const D256 = `sha256:${HEX64}`;
const D512 = `sha512:${HEX64}${HEX64}`;

/** [input, domain, path, tag?, digest?] */
type Valid = [string, string, string, string?, string?];

const VALID: Valid[] = [
  // Docker Hub normalisation
  ['busybox', 'docker.io', 'library/busybox'],
  ['busybox:1.36', 'docker.io', 'library/busybox', '1.36'],
  ['busybox:latest', 'docker.io', 'library/busybox', 'latest'],
  [`busybox@${D256}`, 'docker.io', 'library/busybox', undefined, D256],
  [`busybox:1.36@${D256}`, 'docker.io', 'library/busybox', '1.36', D256],
  ['docker.io/busybox', 'docker.io', 'library/busybox'],
  ['docker.io/library/busybox', 'docker.io', 'library/busybox'],
  ['docker.io/library/busybox:1', 'docker.io', 'library/busybox', '1'],
  ['index.docker.io/busybox', 'docker.io', 'library/busybox'],
  ['index.docker.io/library/busybox:1', 'docker.io', 'library/busybox', '1'],
  ['index.docker.io/user/app', 'docker.io', 'user/app'],
  ['docker.io/user/app', 'docker.io', 'user/app'],
  ['user/app', 'docker.io', 'user/app'],
  ['user/app:v2', 'docker.io', 'user/app', 'v2'],
  ['user/team/app', 'docker.io', 'user/team/app'],
  ['library/busybox', 'docker.io', 'library/busybox'],
  ['library/a/b', 'docker.io', 'library/a/b'],
  ['docker.io/a.b/c', 'docker.io', 'a.b/c'],
  [`docker.io/sha256:${HEX64}`, 'docker.io', 'library/sha256', HEX64], // valid, unlike 'sha256:<hex>' alone
  [`docker.io/${HEX64}`, 'docker.io', `library/${HEX64}`], // valid, unlike the image ID alone
  ['0/1', 'docker.io', '0/1'],
  ['a', 'docker.io', 'library/a'],
  ['a.b', 'docker.io', 'library/a.b'], // one component: never a domain, even with a dot
  ['myacr.azurecr.io', 'docker.io', 'library/myacr.azurecr.io'],
  ['localhost', 'docker.io', 'library/localhost'],
  ['localhost:5000', 'docker.io', 'library/localhost', '5000'], // as in Docker: a Hub image with a tag
  // registries
  ['localhost/app', 'localhost', 'app'],
  ['localhost:5000/app', 'localhost:5000', 'app'],
  ['localhost:5000/team/app:1.0', 'localhost:5000', 'team/app', '1.0'],
  [`localhost:5000/app:1@${D256}`, 'localhost:5000', 'app', '1', D256],
  ['127.0.0.1:5000/app', '127.0.0.1:5000', 'app'],
  ['127.0.0.1/app', '127.0.0.1', 'app'],
  ['1.2.3.4/app', '1.2.3.4', 'app'],
  ['[::1]/app', '[::1]', 'app'],
  ['[::1]:5000/app:1', '[::1]:5000', 'app', '1'],
  ['[2001:db8::1]:443/team/app', '[2001:db8::1]:443', 'team/app'],
  ['[fe80:0:0:0:0:0:0:1]/app', '[fe80:0:0:0:0:0:0:1]', 'app'],
  ['[2001:DB8::A]/app', '[2001:DB8::A]', 'app'],
  ['myacr.azurecr.io/team/app:1.0', 'myacr.azurecr.io', 'team/app', '1.0'],
  [`myacr.azurecr.io/app@${D256}`, 'myacr.azurecr.io', 'app', undefined, D256],
  ['MyRegistry/app', 'MyRegistry', 'app'], // upper case: a host name, never a path
  ['MyRegistry.Example.COM:8080/app', 'MyRegistry.Example.COM:8080', 'app'],
  ['registry:5000/app', 'registry:5000', 'app'],
  ['example.com/a/b/c/d', 'example.com', 'a/b/c/d'],
  ['gcr.io/google-containers/pause:3.9', 'gcr.io', 'google-containers/pause', '3.9'],
  ['ghcr.io/owner/repo:sha-abc123', 'ghcr.io', 'owner/repo', 'sha-abc123'],
  [`quay.io/org/app@${D512}`, 'quay.io', 'org/app', undefined, D512],
  ['xn--bcher-kva.example/app', 'xn--bcher-kva.example', 'app'],
  ['a-b.c-d:1/x', 'a-b.c-d:1', 'x'],
  ['host.with-dash.io:65535/app', 'host.with-dash.io:65535', 'app'],
  ['host:0/app', 'host:0', 'app'],
  ['docker.io:443/app', 'docker.io:443', 'app'], // only the bare Hub names are normalised
  // path components
  ['a_b', 'docker.io', 'library/a_b'],
  ['a__b', 'docker.io', 'library/a__b'],
  ['a-b', 'docker.io', 'library/a-b'],
  ['a---b', 'docker.io', 'library/a---b'],
  ['a.b-c_d__e', 'docker.io', 'library/a.b-c_d__e'],
  ['foo/foo_bar.com:8080', 'docker.io', 'foo/foo_bar.com', '8080'], // 'foo' is not a domain
  // tags
  ['app:_tag', 'docker.io', 'library/app', '_tag'],
  ['app:TAG_Upper.1-2', 'docker.io', 'library/app', 'TAG_Upper.1-2'],
  ['app:a', 'docker.io', 'library/app', 'a'],
  ['app:1.0.0-rc.1__x', 'docker.io', 'library/app', '1.0.0-rc.1__x'],
  [`app:${'t'.repeat(128)}`, 'docker.io', 'library/app', 't'.repeat(128)],
  [`app:${HEX64}`, 'docker.io', 'library/app', HEX64],
  // digests of other algorithms (OCI grammar)
  ['app@sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564', 'docker.io', 'library/app', undefined, 'sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564'],
  ['app@multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8', 'docker.io', 'library/app', undefined, 'multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8'],
  ['app:1@blake3:abc=', 'docker.io', 'library/app', '1', 'blake3:abc='],
  // length: exactly 255 characters is allowed
  [`example.com/${'a'.repeat(243)}`, 'example.com', 'a'.repeat(243)],
  [`${'a'.repeat(237)}`, 'docker.io', `library/${'a'.repeat(237)}`],
];

/** [input, fragments the message must contain] */
const INVALID: [string, ...string[]][] = [
  ['', 'it is empty'],
  [' busybox', 'contains whitespace'],
  ['busybox ', 'contains whitespace'],
  ['busybox\n', 'contains whitespace'],
  ['\u00a0busybox', 'contains whitespace'],
  ['my app', 'contains whitespace', "the repository 'my app'"],
  ['app\tx', 'contains whitespace', "'app\\tx'"],
  ['app:Bad Tag!', "the tag 'Bad Tag!'", 'contains whitespace'],
  ['my reg.io/app', "the registry 'my reg.io' contains whitespace"],
  [`app@sha256:${HEX64.slice(1)} 1`, "the digest 'sha256:", 'contains whitespace'],
  // tags
  ['app:bad!', "the tag 'bad!' may contain only"],
  ['app:.hidden', "the tag '.hidden' starts with '.'"],
  ['app:-x', "the tag '-x' starts with '-'"],
  ['app:', "the tag after ':' is empty"],
  [`app:${'t'.repeat(129)}`, 'is longer than 128 characters'],
  ['app:1:2', "the tag '1:2'"],
  ['host:5000/app:tag:x', "the tag 'tag:x'"],
  ['app:é', "the tag 'é'"],
  ['app:v1+build', "the tag 'v1+build'"],
  // upper case in the path
  ['MyApp', "uppercase letters in the repository 'MyApp' are not allowed; use 'myapp'"],
  ['MyApp:1.0', "uppercase letters in the repository 'MyApp' are not allowed; use 'myapp'"],
  ['team/MyApp', "uppercase letters in the repository 'team/MyApp' are not allowed; use 'team/myapp'"],
  ['docker.io/Library/busybox', "uppercase letters in the repository 'Library/busybox'"],
  ['localhost:5000/App', "uppercase letters in the repository 'App'"],
  ['Reg.io/App', "uppercase letters in the repository 'App'"],
  ['toString:abc', "uppercase letters in the repository 'toString'"],
  // digests
  ['app@sha256:abc', "the digest 'sha256:abc' must be sha256: followed by 64 hex digits"],
  [`app@sha256:${HEX64.slice(1)}`, 'must be sha256: followed by 64 hex digits'],
  [`app@sha256:${HEX64}0`, 'must be sha256: followed by 64 hex digits'],
  [`app@sha256:${HEX64.toUpperCase()}`, 'must be sha256: followed by 64 hex digits', 'lowercase'],
  [`app@sha256:${'g'.repeat(64)}`, 'must be sha256: followed by 64 hex digits'],
  [`app@sha512:${HEX64}`, 'must be sha512: followed by 128 hex digits'],
  ['app@abc', "the digest 'abc' must be algorithm:encoded"],
  [`app@SHA256:${HEX64}`, "the digest algorithm 'SHA256'", "'sha256'"],
  ['app@foo:bar!', "the encoded part of the digest 'foo:bar!'"],
  ['app@foo_:bar', "the digest algorithm 'foo_'"],
  ['app@:abc', "the digest algorithm ''"],
  ['app@sha256:', 'must be sha256: followed by 64 hex digits'],
  ['app@', "the digest after '@' is empty"],
  ['app@@x', "more than one '@'"],
  [`app@${D256}@${D256}`, "more than one '@'"],
  [`app@${D256}:1`, `the digest '${D256}:1'`],
  [`@${D256}`, 'no repository name'],
  [':tag', 'no repository name'],
  [`sha256:${HEX64}`, 'a digest without a repository'],
  [HEX64, 'image ID'],
  // path components
  ['a//b', "the repository 'a//b' has an empty path component"],
  ['a/', 'empty path component'],
  ['/a', 'empty path component'],
  ['localhost/', 'empty path component'],
  ['a__', "the path component 'a__'"],
  ['_a', "the path component '_a'"],
  ['a..b', "the path component 'a..b'"],
  ['a___b', "the path component 'a___b'"],
  ['a_.b', "the path component 'a_.b'"],
  ['a-', "the path component 'a-'"],
  ['-a', "the path component '-a'"],
  ['team/a#1', "the path component 'a#1'"],
  ['ümlaut', "the path component 'ümlaut'"],
  ['foo/bar/', 'empty path component'],
  // registries
  ['my_reg.io/app', "the registry host 'my_reg.io'", "label 'my_reg'"],
  ['-reg.io/app', "label '-reg'"],
  ['reg-.io/app', "label 'reg-'"],
  ['reg..io/app', 'empty label'],
  ['.reg.io/app', 'empty label'],
  ['reg.io./app', 'empty label'],
  ['reg.io:abc/app', "the port 'abc'"],
  ['reg.io:99999/app', "the port '99999'"],
  ['reg.io:/app', "the port ''"],
  [':5000/app', "the registry ':5000' has no host name"],
  ['::1/app', "the registry '::1' has more than one ':'", 'brackets'],
  ['[::1/app', "the registry '[::1' is not a valid IPv6 address"],
  ['[::1]x/app', 'is not a valid IPv6 address'],
  ['[fe80::1%eth0]/app', 'is not a valid IPv6 address'],
  ['[::ffff:1.2.3.4]/app', 'is not a valid IPv6 address'],
  ['[1:2:3]/app', 'is not a valid IPv6 address'],
  ['[]/app', 'is not a valid IPv6 address'],
  ['[::1]:99999/app', "the port '99999'"],
  ['[::1]', "the registry '[::1]' has no repository path"],
  ['https://myacr.azurecr.io/app', 'URL scheme'],
  // length
  [`example.com/${'a'.repeat(244)}`, 'the name is longer than 255 characters'],
  [`x/${'a'.repeat(250)}`, 'the name is longer than 255 characters'],
  [`${'a'.repeat(238)}`, 'the name is longer than 255 characters'], // 'docker.io/library/' counts
];

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
    for (const d of [D256, D512, 'sha256+b64u:abc', 'multihash+base58:QmRZ', 'a.b_c-d:x=']) assert.ok(isDigest(d), d);
    for (const d of ['', 'sha256', 'sha256:', `sha256:${HEX64.toUpperCase()}`, `sha512:${HEX64}`, `SHA256:${HEX64}`, 'a:b c', ':x', 'a+:b', 'constructor:x!', 'toString:x']) {
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
  ];
  for (const [domain, is] of loopback) test(`isLoopbackRegistry(${domain}) = ${is}`, () => assert.equal(isLoopbackRegistry(domain), is));

  const urls: [string, string][] = [
    ['docker.io', 'https://registry-1.docker.io'],
    ['index.docker.io', 'https://registry-1.docker.io'],
    ['registry-1.docker.io', 'https://registry-1.docker.io'],
    ['127.0.0.1:5000', 'http://127.0.0.1:5000'],
    ['localhost:5000', 'http://localhost:5000'],
    ['[::1]:5000', 'http://[::1]:5000'],
    ['myacr.azurecr.io', 'https://myacr.azurecr.io'],
    ['registry.example.com:8443', 'https://registry.example.com:8443'],
  ];
  for (const [domain, url] of urls) test(`registryBaseUrl(${domain}) = ${url}`, () => assert.equal(registryBaseUrl(domain), url));
});

// ---------------------------------------------------------------------------------------------
// Properties

// An independent transcription of distribution/reference's ReferenceRegexp, used as an oracle:
// every reference this module accepts, in full form, must be one distribution accepts too.
const DIST = (() => {
  const alnum = '[a-z0-9]+';
  const component = `${alnum}(?:(?:[._]|__|[-]+)${alnum})*`;
  const label = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
  const host = `(?:${label}(?:\\.${label})*|\\[(?:[a-fA-F0-9:]+)\\])`;
  const name = `(?:${host}(?::[0-9]+)?/)?${component}(?:/${component})*`;
  const digest = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';
  return new RegExp(`^${name}(?::[\\w][\\w.-]{0,127})?(?:@${digest})?$`);
})();

function distributionAccepts(ref: ImageReference): boolean {
  // Distribution's digest pattern is narrower than OCI's: check it only for registered algorithms.
  const registered = ref.digest === undefined || /^sha(256|512):/.test(ref.digest);
  return DIST.test(formatReference(registered ? ref : { ...ref, digest: undefined }));
}

function looksLikeDomain(c: string): boolean {
  return c === 'localhost' || /[.:]/.test(c) || c !== c.toLowerCase();
}

const alnum = fc.stringMatching(/^[a-z0-9]{1,6}$/);
const separator = fc.constantFrom('.', '_', '__', '-', '--', '---');
const component = fc
  .tuple(alnum, fc.array(fc.tuple(separator, alnum), { maxLength: 2 }))
  .map(([head, rest]) => head + rest.map(([s, a]) => s + a).join(''));
const pathArb = fc.array(component, { minLength: 1, maxLength: 4 }).map((cs) => cs.join('/'));
const label = fc.stringMatching(/^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?$/);
const hostArb = fc.oneof(
  fc.array(label, { minLength: 2, maxLength: 4 }).map((ls) => ls.join('.')),
  label, // a single label is a registry only with a port or upper case (filtered below)
  fc.constantFrom('localhost', 'docker.io', 'index.docker.io', 'myacr.azurecr.io'),
  fc.ipV4(),
  fc.ipV6().filter((a) => !a.includes('.')).map((a) => `[${a}]`),
);
const domainArb = fc
  .tuple(hostArb, fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }))
  .map(([h, p]) => (p === undefined ? h : `${h}:${p}`))
  .filter(looksLikeDomain);
const tagArb = fc.oneof(fc.stringMatching(/^[\w][\w.-]{0,10}$/), fc.stringMatching(/^[\w][\w.-]{0,127}$/));
const hex = (n: number) => fc.stringMatching(new RegExp(`^[a-f0-9]{${n}}$`));
const digestArb = fc.oneof(
  hex(64).map((h) => `sha256:${h}`),
  hex(128).map((h) => `sha512:${h}`),
  fc
    .tuple(fc.stringMatching(/^[a-z0-9]{1,6}(?:[+._-][a-z0-9]{1,6}){0,2}$/), fc.stringMatching(/^[a-zA-Z0-9=_-]{1,40}$/))
    .filter(([a]) => a !== 'sha256' && a !== 'sha512')
    .map(([a, e]) => `${a}:${e}`),
);

const generated = fc
  .record({
    domain: fc.option(domainArb, { nil: undefined }),
    path: pathArb,
    tag: fc.option(tagArb, { nil: undefined }),
    digest: fc.option(digestArb, { nil: undefined }),
  })
  // Without a registry, a first component that looks like one would be read as the registry.
  .filter(({ domain, path }) => domain !== undefined || !path.includes('/') || !looksLikeDomain(path.split('/')[0]));

describe('properties', () => {
  test('generated references parse to their parts, and format/familiarName round-trip', () => {
    fc.assert(
      fc.property(generated, ({ domain, path, tag, digest }) => {
        const text = (domain !== undefined ? `${domain}/` : '') + path + (tag !== undefined ? `:${tag}` : '') + (digest !== undefined ? `@${digest}` : '');
        const hub = domain === undefined || domain === 'docker.io' || domain === 'index.docker.io';
        const want = expected(hub ? 'docker.io' : domain, hub && !path.includes('/') ? `library/${path}` : path, tag, digest);
        fc.pre(repositoryName(want).length <= 255);
        const ref = parseReference(text);
        assert.deepEqual(ref, want);
        assert.deepEqual(parseReference(formatReference(ref)), ref);
        assert.deepEqual(parseReference(familiarName(ref)), ref);
        assert.ok(distributionAccepts(ref), formatReference(ref));
        assert.ok(sameRepository(ref, parseReference(pinnedReference(ref, D256))));
        if (tag !== undefined) assert.deepEqual(withTag(ref, tag), expected(ref.domain, ref.path, tag));
      }),
      { numRuns: 2000 },
    );
  });

  test('arbitrary reference-like strings: refused with InvalidReferenceError, or accepted consistently', () => {
    const chars = fc.constantFrom(...'ab1.._-/:@A[]f: '.split(''), 'sha256:' + HEX64, 'localhost', 'docker.io/', '::1');
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 12 }).map((cs) => cs.join('')), (text) => {
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
        assert.ok(distributionAccepts(ref), `${text} -> ${formatReference(ref)}`);
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

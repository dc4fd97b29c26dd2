// Image references for the tests of tasks/lib/reference: the table of expected parses and
// refusals, and fast-check generators of references. test/unit/reference.test.ts checks our
// parser against the tables; test/unit/reference-oracle.test.ts runs all of them, and more,
// through distribution/reference itself.
import fc from 'fast-check';

export const HEX64 = '9a7b1e3c5d2f4a6b8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b';
export const D256 = `sha256:${HEX64}`;
export const D384 = `sha384:${HEX64}${HEX64.slice(0, 32)}`;
export const D512 = `sha512:${HEX64}${HEX64}`;

/** [input, domain, path, tag?, digest?] */
export type Valid = [string, string, string, string?, string?];

export const VALID: Valid[] = [
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
  // digests: the three algorithms go-digest verifies
  [`app@${D384}`, 'docker.io', 'library/app', undefined, D384],
  [`reg.io/app:1@${D384}`, 'reg.io', 'app', '1', D384],
  [`localhost:5000/app@${D512}`, 'localhost:5000', 'app', undefined, D512],
  // *.localhost registries
  ['registry.localhost/app', 'registry.localhost', 'app'],
  ['registry.localhost:5000/team/app:1', 'registry.localhost:5000', 'team/app', '1'],
  // length: the path may have 255 characters; the registry does not count (distribution v0.6+)
  [`example.com/${'a'.repeat(255)}`, 'example.com', 'a'.repeat(255)],
  [`${'d'.repeat(63)}.example.com:5000/team/${'a'.repeat(250)}`, `${'d'.repeat(63)}.example.com:5000`, `team/${'a'.repeat(250)}`],
  [`x/${'a'.repeat(253)}`, 'docker.io', `x/${'a'.repeat(253)}`],
  [`${'a'.repeat(247)}`, 'docker.io', `library/${'a'.repeat(247)}`], // 'library/' counts
  [`docker.io/${'a'.repeat(247)}:1`, 'docker.io', `library/${'a'.repeat(247)}`, '1'],
];

/** [input, fragments the message must contain] */
export const INVALID: [string, ...string[]][] = [
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
  [`app@sha384:${HEX64}`, 'must be sha384: followed by 96 hex digits (0-9, a-f) (it has 64)'],
  [`app@sha384:${HEX64}${HEX64.slice(0, 33)}`, 'must be sha384: followed by 96 hex digits', '(it has 97)'],
  [`app@${D384.toUpperCase().replace('SHA384', 'sha384')}`, 'must be sha384: followed by 96 hex digits', 'lowercase'],
  [`app@sha512:${HEX64}${HEX64}0`, 'must be sha512: followed by 128 hex digits', '(it has 129)'],
  ['app@abc', "the digest 'abc' must be algorithm:encoded"],
  [`app@SHA256:${HEX64}`, "the digest algorithm 'SHA256'", "write it in lowercase, 'sha256'"],
  // other algorithms: the OCI grammar allows them, Docker, containerd and the kubelet refuse them
  [`app@sha1:${HEX64.slice(0, 40)}`, "the digest algorithm 'sha1' in 'sha1:", 'is not supported', 'sha256, sha384 or sha512', 'pin the image by its sha256 digest'],
  [`app@md5:${HEX64.slice(0, 32)}`, "the digest algorithm 'md5'", 'is not supported'],
  [`app@blake3:${HEX64}`, "the digest algorithm 'blake3'", 'is not supported'],
  ['app:1@blake3:abc=', "the digest algorithm 'blake3'", 'is not supported'],
  ['app@sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564', "the digest algorithm 'sha256+b64u'", 'is not supported'],
  ['app@multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8', "the digest algorithm 'multihash+base58'", 'is not supported'],
  [`localhost:5000/app:1@sha-256:${HEX64}`, "the digest algorithm 'sha-256'", 'is not supported'],
  ['app@foo:bar!', "the digest algorithm 'foo'", 'is not supported'],
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
  [D384, 'a digest without a repository', `'repository@${D384}'`],
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
  // length: the path counts, with the 'library/' Docker Hub adds, without the registry
  [`example.com/${'a'.repeat(256)}`, 'the repository path is longer than 255 characters (256)', 'use a shorter repository path'],
  [`localhost:5000/team/${'a'.repeat(251)}`, 'the repository path is longer than 255 characters (256)'],
  [`x/${'a'.repeat(254)}`, 'the repository path is longer than 255 characters (256)'],
  [`${'a'.repeat(248)}`, "the repository path is longer than 255 characters (256 with the 'library/' Docker Hub adds)"],
  [`docker.io/${'a'.repeat(248)}`, "(256 with the 'library/' Docker Hub adds)"],
];

// ---------------------------------------------------------------------------------------------
// Generators

/** Would distribution take this first component as a registry? (An independent copy of the rule.) */
export function looksLikeDomain(c: string): boolean {
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
  hex(96).map((h) => `sha384:${h}`),
  hex(128).map((h) => `sha512:${h}`),
);

export const generated = fc
  .record({
    domain: fc.option(domainArb, { nil: undefined }),
    path: pathArb,
    tag: fc.option(tagArb, { nil: undefined }),
    digest: fc.option(digestArb, { nil: undefined }),
  })
  // Without a registry, a first component that looks like one would be read as the registry.
  .filter(({ domain, path }) => domain !== undefined || !path.includes('/') || !looksLikeDomain(path.split('/')[0]));

/** Strings made of the pieces references are made of, mostly invalid: for refusals and odd corners. */
export const referenceLike = fc
  .array(fc.constantFrom(...'ab1.._-/:@A[]f: '.split(''), `sha256:${HEX64}`, 'localhost', 'docker.io/', '::1'), { maxLength: 12 })
  .map((pieces) => pieces.join(''));

/** The text of a generated reference: [domain '/'] path [':' tag] ['@' digest]. */
export function referenceText(r: { domain?: string; path: string; tag?: string; digest?: string }): string {
  return (r.domain !== undefined ? `${r.domain}/` : '') + r.path + (r.tag !== undefined ? `:${r.tag}` : '') + (r.digest !== undefined ? `@${r.digest}` : '');
}

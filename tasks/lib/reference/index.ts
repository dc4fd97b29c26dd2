// Image references: parse, normalise and format names such as `busybox`, `team/app:1.0` or
// `myacr.azurecr.io/team/app:1.0@sha256:…`.
//
// The grammar is the one of github.com/distribution/reference (the library Docker itself uses),
// written here as small steps rather than one large regular expression, so that an error can name
// the part that is wrong and say what to do:
//
//   reference  := name [ ':' tag ] [ '@' digest ]
//   name       := [ domain '/' ] path
//   domain     := host [ ':' port ]
//   host       := label ( '.' label )*  |  '[' ipv6 ']'
//   label      := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//   path       := component ( '/' component )*
//   component  := [a-z0-9]+ ( ( '.' | '_' | '__' | '-'+ ) [a-z0-9]+ )*
//   tag        := [\w][\w.-]{0,127}
//   digest     := 'sha256:' 64 hex | 'sha384:' 96 hex | 'sha512:' 128 hex   (lowercase hex)
//
// Normalisation follows distribution's ParseNormalizedNamed: Docker Hub is `docker.io`, and a
// one-component Docker Hub path gets the `library/` prefix. No default tag is added. The path
// (with that prefix, without the registry) is at most 255 characters, as in distribution v0.6+.
// Digests are the ones go-digest can verify, as Docker, containerd and the kubelet link it: any
// other algorithm, or a known one at the wrong length, is refused there, so it is refused here.
//
// test/unit/reference-oracle.test.ts checks all of this against distribution/reference itself.
// Where this module is stricter than distribution (each because the reference could never work):
//   - a port must be at most 65535;
//   - an IPv6 literal must be a real IPv6 address (distribution accepts any run of hex and ':');
//   - a first component that is not a valid host name ('my_reg.io/app') is refused;
//     distribution's regular expression then reads the whole name as a path on no registry;
//   - a bare digest (`sha256:<64 hex>`) is refused instead of being read as the image
//     `docker.io/library/sha256` with a tag.
import { isIPv6 } from 'node:net';
import { InvalidReferenceError } from '../errors';
import { DOCKER_HUB_DOMAIN, LEGACY_DOCKER_HUB_DOMAIN } from './registries';

export { DOCKER_HUB_DOMAIN, isDockerHub, isLoopbackRegistry, registryBaseUrl } from './registries';

export interface ImageReference {
  /** Normalised registry host[:port]: 'docker.io', 'localhost:5000', '[::1]:5000', 'myacr.azurecr.io'. */
  domain: string;
  /** Repository path within the registry: 'library/busybox', 'team/app'. */
  path: string;
  tag?: string;
  /** 'sha256:<64 hex>', 'sha384:<96 hex>' or 'sha512:<128 hex>'. */
  digest?: string;
}

/** Namespace of Docker Hub's official images: `busybox` is `docker.io/library/busybox`. */
const OFFICIAL_PREFIX = 'library/';
/** Longest repository path distribution accepts: the path only ('library/busybox'), not the registry. */
export const PATH_MAX_LENGTH = 255;

const TAG = /^[\w][\w.-]{0,127}$/;
// One path component. The separators are distinct from the letters, so this cannot backtrack badly.
// Note the asymmetry inherited from distribution: one '.', one or two '_', any number of '-'.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
// One DNS label of a registry host: letters (either case), digits, inner '-'.
const HOST_LABEL = /^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$/;
// An image ID: 64 hex digits, which distribution refuses as a repository name.
const IMAGE_ID = /^[a-f0-9]{64}$/;
// The digest algorithms go-digest verifies, each with its length of lowercase hex. Docker refuses
// every other algorithm ('unsupported digest algorithm'), and so do containerd and the kubelet.
const DIGEST_ALGORITHMS = new Map<string, number>([
  ['sha256', 64],
  ['sha384', 96],
  ['sha512', 128],
]);
const SUPPORTED_ALGORITHMS = 'sha256, sha384 or sha512';

/** What is wrong with one part, and what the user should do about it. */
interface Problem {
  problem: string;
  hint: string;
}

// ---------------------------------------------------------------------------------------------
// Parsing

/**
 * Parse and normalise an image reference. `busybox` becomes docker.io/library/busybox,
 * `index.docker.io/x` becomes docker.io/library/x. No default tag is added.
 * `what` names the input in errors, e.g. "Input 'images'".
 * @throws InvalidReferenceError naming the part that is wrong and what to do.
 */
export function parseReference(text: string, what?: string): ImageReference {
  const fail = (p: Problem): never => {
    throw new InvalidReferenceError(
      `${lead(what, `the image reference ${quote(String(text))} is not valid`)}: ${p.problem}; ${p.hint}.`,
    );
  };

  if (typeof text !== 'string' || text === '') {
    fail({ problem: 'it is empty', hint: "give a reference such as 'myregistry.azurecr.io/team/app:1.0'" });
  }
  if (text.trim() !== text) {
    fail({ problem: 'it contains whitespace at the start or end', hint: 'remove the surrounding spaces or line breaks' });
  }
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(text)) {
    fail({ problem: 'it starts with a URL scheme', hint: "leave out the scheme, e.g. 'myregistry.example.com/team/app' rather than 'https://myregistry.example.com/team/app'" });
  }
  const alone = refusedAlone(text);
  if (alone) fail(alone);

  // 1. The digest is everything after the first '@' (neither name nor tag may contain '@').
  const at = text.indexOf('@');
  const nameAndTag = at < 0 ? text : text.slice(0, at);
  const digest = at < 0 ? undefined : text.slice(at + 1);
  if (digest !== undefined && digest.includes('@')) {
    fail({ problem: "it contains more than one '@'", hint: "use one '@' before the digest: 'repository[:tag]@sha256:…'" });
  }

  // 2. The tag follows the first ':' after the last '/'. A ':' before the last '/' belongs to the
  //    domain's port ('localhost:5000/app'). Without any '/', 'localhost:5000' is, as in Docker,
  //    the Docker Hub image 'localhost' with the tag '5000'.
  if (!nameAndTag.includes('/') && nameAndTag.startsWith('[')) {
    fail({ problem: `the registry ${quote(nameAndTag)} has no repository path after it`, hint: "write e.g. '[::1]:5000/team/app'" });
  }
  const colon = nameAndTag.indexOf(':', nameAndTag.lastIndexOf('/') + 1);
  const name = colon < 0 ? nameAndTag : nameAndTag.slice(0, colon);
  const tag = colon < 0 ? undefined : nameAndTag.slice(colon + 1);
  if (name === '') {
    fail({ problem: 'it has no repository name', hint: "put the repository before the tag or digest, e.g. 'team/app:1.0'" });
  }

  // 3. Domain or not? Like distribution's splitDockerDomain, the first component is a registry
  //    only when it is followed by '/' and is 'localhost', contains '.' or ':' (host name, IPv4,
  //    port, IPv6 literal) or has upper case (never allowed in a path, allowed in a host name).
  //    Otherwise the whole name is a Docker Hub path: 'team/app' is docker.io/team/app.
  const slash = name.indexOf('/');
  let domain = DOCKER_HUB_DOMAIN;
  let writtenPath = name;
  if (slash >= 0 && looksLikeDomain(name.slice(0, slash))) {
    domain = name.slice(0, slash);
    writtenPath = name.slice(slash + 1);
    const problem = domainProblem(domain);
    if (problem) fail(problem);
    if (domain === LEGACY_DOCKER_HUB_DOMAIN) domain = DOCKER_HUB_DOMAIN;
  }

  const pathProblem = repositoryProblem(writtenPath);
  if (pathProblem) fail(pathProblem);
  // Official Docker Hub images live under 'library/', but only on Docker Hub and only for a
  // single component: 'docker.io/busybox' -> 'library/busybox', 'docker.io/user/app' stays.
  const path = domain === DOCKER_HUB_DOMAIN && !writtenPath.includes('/') ? OFFICIAL_PREFIX + writtenPath : writtenPath;

  // Distribution measures the normalised path without the registry: 'busybox' counts as
  // 'library/busybox', 'myregistry.example.com/team/app' as 'team/app'.
  if (path.length > PATH_MAX_LENGTH) {
    const added = path === writtenPath ? '' : ` with the '${OFFICIAL_PREFIX}' Docker Hub adds`;
    fail({
      problem: `the repository path is longer than ${PATH_MAX_LENGTH} characters (${path.length}${added})`,
      hint: 'use a shorter repository path',
    });
  }

  if (tag !== undefined) {
    if (tag === '') fail({ problem: "the tag after ':' is empty", hint: "give a tag such as '1.0', or leave out the ':'" });
    const problem = tagProblem(tag);
    if (problem) fail(problem);
  }
  if (digest !== undefined) {
    if (digest === '') fail({ problem: "the digest after '@' is empty", hint: "give a digest such as 'sha256:<64 hex digits>', or leave out the '@'" });
    const problem = digestProblem(digest);
    if (problem) fail(problem);
  }

  return build(domain, path, tag, digest);
}

/**
 * Two whole inputs that fit the grammar but are refused because no one means them as written:
 * a bare image ID (distribution refuses it too) and a bare digest (distribution would read
 * 'sha256:<hex>' as the image 'docker.io/library/sha256' with a long tag).
 */
function refusedAlone(text: string): Problem | undefined {
  if (IMAGE_ID.test(text)) {
    return {
      problem: 'it is a 64-hex-digit image ID, not a repository name',
      hint: "give the repository, pinned with '@sha256:<digest>' if you need an exact image",
    };
  }
  if (!text.includes('/') && !text.includes('@') && digestProblem(text) === undefined) {
    return { problem: 'it is a digest without a repository', hint: `write it as 'repository@${text}'` };
  }
  return undefined;
}

/**
 * Would distribution take this first component as a registry rather than a path component?
 * ('[' is added so that a broken IPv6 literal gets a message about the registry: no path has it.)
 */
function looksLikeDomain(component: string): boolean {
  return component === 'localhost' || /[.:[]/.test(component) || component !== component.toLowerCase();
}

/** What is wrong with a registry host[:port], if anything. */
function domainProblem(domain: string): Problem | undefined {
  const q = quote(domain);
  if (/\s/.test(domain)) return { problem: `the registry ${q} contains whitespace`, hint: 'remove it' };

  let port: string | undefined;
  if (domain.startsWith('[')) {
    // IPv6 literal: '[' address ']' with an optional port. Zone ids ('%eth0') and IPv4-mapped
    // forms ('::ffff:1.2.3.4') are excluded, as in distribution.
    const m = /^\[([^\]]*)\](?::(.*))?$/.exec(domain);
    if (!m || !/^[0-9a-fA-F:]+$/.test(m[1]) || !isIPv6(m[1])) {
      return {
        problem: `the registry ${q} is not a valid IPv6 address in brackets`,
        hint: "write it like '[::1]:5000' (no zone id, no embedded IPv4)",
      };
    }
    port = m[2];
  } else {
    const parts = domain.split(':');
    if (parts.length > 2) {
      return { problem: `the registry ${q} has more than one ':'`, hint: "put an IPv6 address in brackets, e.g. '[::1]:5000'" };
    }
    const host = parts[0];
    port = parts[1];
    if (host === '') return { problem: `the registry ${q} has no host name`, hint: "write it like 'myregistry.example.com:5000'" };
    const bad = host.split('.').find((label) => !HOST_LABEL.test(label));
    if (bad !== undefined) {
      return {
        problem: bad === ''
          ? `the registry host ${quote(host)} has an empty label (a leading, trailing or doubled '.')`
          : `the registry host ${quote(host)} is not a valid host name (label ${quote(bad)})`,
        hint: "a host name is made of letters, digits and inner '-', separated by single dots",
      };
    }
  }
  if (port !== undefined && (!/^[0-9]+$/.test(port) || Number(port) > 65535)) {
    return { problem: `the port ${quote(port)} of the registry ${q} is not a number from 0 to 65535`, hint: 'correct the port' };
  }
  return undefined;
}

/** What is wrong with a repository path as the user wrote it (without 'library/' added), if anything. */
function repositoryProblem(path: string): Problem | undefined {
  const q = quote(path);
  if (/\s/.test(path)) return { problem: `the repository ${q} contains whitespace`, hint: 'remove it' };
  if (path !== path.toLowerCase()) {
    return { problem: `uppercase letters in the repository ${q} are not allowed`, hint: `use ${quote(path.toLowerCase())}` };
  }
  for (const component of path.split('/')) {
    if (component === '') {
      return { problem: `the repository ${q} has an empty path component (a leading, trailing or doubled '/')`, hint: "remove the extra '/'" };
    }
    if (!PATH_COMPONENT.test(component)) {
      return {
        problem: `the path component ${quote(component)} of the repository ${q} is not valid`,
        hint: "use lowercase letters and digits, separated by one '.', one or two '_', or any number of '-'",
      };
    }
  }
  return undefined;
}

function tagProblem(tag: string): Problem | undefined {
  if (TAG.test(tag)) return undefined;
  const q = quote(tag);
  if (tag === '') return { problem: 'the tag is empty', hint: "give a tag such as '1.0'" };
  if (/\s/.test(tag)) return { problem: `the tag ${q} contains whitespace`, hint: 'remove it' };
  if (tag.length > 128) return { problem: `the tag ${q} is longer than 128 characters (${tag.length})`, hint: 'use a shorter tag' };
  if (/^[.-]/.test(tag)) return { problem: `the tag ${q} starts with ${quote(tag[0])}`, hint: "start it with a letter, digit or '_'" };
  return {
    problem: `the tag ${q} may contain only letters, digits, '_', '.' and '-'`,
    hint: "use a tag such as '1.2.3' or 'main-20240101.1'",
  };
}

function digestProblem(digest: string): Problem | undefined {
  const q = quote(digest);
  const copy = "copy the digest exactly as the registry or 'docker buildx imagetools inspect' reports it";
  if (/\s/.test(digest)) return { problem: `the digest ${q} contains whitespace`, hint: 'remove it' };
  const colon = digest.indexOf(':');
  if (colon < 0) {
    return { problem: `the digest ${q} must be algorithm:encoded, e.g. sha256: followed by 64 hex digits`, hint: copy };
  }
  const algorithm = digest.slice(0, colon);
  const encoded = digest.slice(colon + 1);
  const hexDigits = DIGEST_ALGORITHMS.get(algorithm);
  if (hexDigits === undefined) {
    const lower = algorithm.toLowerCase();
    return {
      problem: `the digest algorithm ${quote(algorithm)} in ${q} is not supported: Docker, containerd and Kubernetes accept only ${SUPPORTED_ALGORITHMS}`,
      hint: DIGEST_ALGORITHMS.has(lower) ? `write it in lowercase, ${quote(lower)}` : `pin the image by its sha256 digest, as the registry or 'docker buildx imagetools inspect' reports it`,
    };
  }
  if (encoded.length === hexDigits && /^[a-f0-9]+$/.test(encoded)) return undefined;
  const hex = /^[a-fA-F0-9]*$/.test(encoded);
  const wrongLength = hex && encoded.length !== hexDigits ? ` (it has ${encoded.length})` : '';
  return {
    problem: `the digest ${q} must be ${algorithm}: followed by ${hexDigits} hex digits (0-9, a-f)${wrongLength}`,
    hint: hex && !wrongLength ? 'write the hex digits in lowercase' : copy,
  };
}

// ---------------------------------------------------------------------------------------------
// Formatting and building

/** 'docker.io/library/busybox': domain/path, always in full. */
export function repositoryName(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The full form: 'docker.io/library/busybox:1.36@sha256:…' (tag and digest when present). */
export function formatReference(ref: ImageReference): string {
  return repositoryName(ref) + (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');
}

/**
 * Docker's short form: 'busybox:1.36', 'user/app', 'localhost:5000/app:1'.
 * Docker Hub's domain is dropped, and 'library/' for official images, except where dropping the
 * domain would change the meaning: a Docker Hub path whose first component looks like a registry
 * ('docker.io/my.org/app'), and an official image whose short form would be refused
 * ('docker.io/library/sha256:<hex>'), keep the full name, so parseReference(familiarName(x)) is x.
 */
export function familiarName(ref: ImageReference): string {
  const suffix = (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');
  const full = repositoryName(ref) + suffix;
  if (ref.domain !== DOCKER_HUB_DOMAIN) return full;
  let path = ref.path;
  const rest = path.startsWith(OFFICIAL_PREFIX) ? path.slice(OFFICIAL_PREFIX.length) : undefined;
  if (rest !== undefined && !rest.includes('/')) path = rest;
  const slash = path.indexOf('/');
  if (slash >= 0 && looksLikeDomain(path.slice(0, slash))) return full;
  return refusedAlone(path + suffix) ? full : path + suffix;
}

/** The same repository with this tag, and no digest (a digest would pin another image). */
export function withTag(ref: ImageReference, tag: string, what?: string): ImageReference {
  validateTag(tag, what);
  return build(ref.domain, ref.path, tag, undefined);
}

/** The same reference with this digest; the tag, if any, stays. */
export function withDigest(ref: ImageReference, digest: string, what?: string): ImageReference {
  validateDigest(digest, what);
  return build(ref.domain, ref.path, ref.tag, digest);
}

/** 'repository@digest', without the tag: the reference a deployment should run. */
export function pinnedReference(ref: ImageReference, digest: string): string {
  validateDigest(digest);
  return `${repositoryName(ref)}@${digest}`;
}

/** Same registry (host names compare case-insensitively) and same repository path. */
export function sameRepository(a: ImageReference, b: ImageReference): boolean {
  return canonicalDomain(a.domain) === canonicalDomain(b.domain) && a.path === b.path;
}

function canonicalDomain(domain: string): string {
  const lower = domain.toLowerCase();
  return lower === LEGACY_DOCKER_HUB_DOMAIN ? DOCKER_HUB_DOMAIN : lower;
}

/** A tag is [\w][\w.-]{0,127}: letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-'. */
export function isValidTag(tag: string): boolean {
  return typeof tag === 'string' && TAG.test(tag);
}

/** Returns the tag, or throws InvalidReferenceError naming `what` (e.g. "Input 'tags'"). */
export function validateTag(tag: string, what?: string): string {
  const problem = typeof tag === 'string' ? tagProblem(tag) : { problem: 'the tag is missing', hint: "give a tag such as '1.0'" };
  if (problem) throw new InvalidReferenceError(`${lead(what, problem.problem)}; ${problem.hint}.`);
  return tag;
}

/** sha256:<64 lowercase hex>, sha384:<96> or sha512:<128>: the digests Docker accepts. */
export function isDigest(value: string): boolean {
  return typeof value === 'string' && value !== '' && digestProblem(value) === undefined;
}

function validateDigest(digest: string, what?: string): string {
  const problem = typeof digest !== 'string' || digest === ''
    ? { problem: 'the digest is empty', hint: "give a digest such as 'sha256:<64 hex digits>'" }
    : digestProblem(digest);
  if (problem) throw new InvalidReferenceError(`${lead(what, problem.problem)}; ${problem.hint}.`);
  return digest;
}

function build(domain: string, path: string, tag: string | undefined, digest: string | undefined): ImageReference {
  // Only present keys, so that references compare with deepStrictEqual and serialise cleanly.
  const ref: ImageReference = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

// ---------------------------------------------------------------------------------------------
// Messages

/** "Input 'images': the tag …" when the input is named, else "The tag …". */
function lead(what: string | undefined, text: string): string {
  return what ? `${what}: ${text}` : text.charAt(0).toUpperCase() + text.slice(1);
}

const NAMED_ESCAPES = new Map([['\n', '\\n'], ['\r', '\\r'], ['\t', '\\t']]);

/**
 * Single-quote a value for a message. Control characters are escaped so that a reference with a
 * line break cannot start a new log line (and so cannot inject a '##vso[' logging command).
 */
function quote(value: string): string {
  const escaped = value.replace(
    /[\u0000-\u001f\u007f\u2028\u2029]/g,
    (c) => NAMED_ESCAPES.get(c) ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return `'${escaped}'`;
}

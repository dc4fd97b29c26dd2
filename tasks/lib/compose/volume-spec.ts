// A service's short volume syntax (`[SOURCE:]TARGET[:MODE]`) in the long syntax, as compose-go's
// `format.ParseVolume` reads it (and `docker compose config` prints it): a Windows drive letter
// (`C:\data`) is part of its path, not a separator; a source starting with `.`, `/`, `~`, `\\` or
// a drive is a bind mount, anything else a named volume; the modes `ro`/`rw`, `nocopy`, the
// propagations and the SELinux labels `z`/`Z` become fields. Compose ignores other modes (such as
// the `cached` consistency): they are returned in `ignoredModes` so a caller can say so.
import { FileError } from '../errors';

export interface LongVolume {
  type: 'volume' | 'bind';
  source?: string;
  target: string;
  read_only?: true;
  bind?: { propagation?: string; selinux?: 'z' | 'Z' };
  volume?: { nocopy?: true };
}

const PROPAGATIONS = new Set(['rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave']);

export function parseVolumeSpec(spec: string, where: string): { volume: LongVolume; ignoredModes: string[] } {
  if (spec === '') throw new FileError(`${where}: an empty volume entry. Write [SOURCE:]TARGET[:MODE], such as data:/var/lib/data.`);
  // As compose-go: one or two characters are a target (`C:` too).
  if (spec.length <= 2) return { volume: { type: 'volume', target: spec }, ignoredModes: [] };
  const fields: string[] = [];
  let buffer = '';
  for (const char of spec) {
    if (char === ':' && !(buffer.length === 1 && /\p{L}/u.test(buffer))) {
      fields.push(buffer);
      buffer = '';
    } else buffer += char;
  }
  fields.push(buffer);
  if (fields.some((f) => f === '')) throw new FileError(`${where}: volume '${spec}' has an empty part between colons. Write [SOURCE:]TARGET[:MODE].`);
  if (fields.length > 3) throw new FileError(`${where}: volume '${spec}' has too many colons. Write [SOURCE:]TARGET[:MODE].`);
  const [source, target, modes] = fields.length === 1 ? [undefined, fields[0], undefined] : fields;
  const bindSource = source !== undefined && (/^[./~]/.test(source) || source.startsWith('\\\\') || /^\p{L}:/u.test(source));
  const volume: LongVolume = { type: bindSource ? 'bind' : 'volume', ...(source === undefined ? {} : { source }), target };
  const ignoredModes: string[] = [];
  for (const mode of modes === undefined ? [] : modes.split(',')) {
    if (mode === 'ro') volume.read_only = true;
    else if (mode === 'rw') delete volume.read_only;
    else if (mode === 'nocopy') volume.volume = { nocopy: true };
    else if (PROPAGATIONS.has(mode)) volume.bind = { ...volume.bind, propagation: mode };
    else if (mode === 'z' || mode === 'Z') volume.bind = { ...volume.bind, selinux: mode };
    else ignoredModes.push(mode);
  }
  return { volume, ignoredModes };
}

// The build record: what BuildAndTag built in this job (image ids and tags). ContainerizedTest and
// PushWithDigest read it by default, so the image tested and pushed is the image built, by id.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileError } from '../errors';

export interface BuiltImage {
  /** Compose service, or the last path component of imageName. */
  name: string;
  /** Local image id (sha256:…): what was built, whatever happens to the tags. */
  imageId: string;
  /** Fully qualified repository, e.g. registry.example.com/team/api. */
  repository: string;
  tags: string[];
}

export interface BuildRecord {
  schemaVersion: 1;
  buildNumber?: string;
  commit?: string;
  /** The SOURCE_DATE_EPOCH the images were built with (reproducible builds): the lock's createdAt. */
  sourceDateEpoch?: number;
  images: BuiltImage[];
}

/** Where BuildAndTag writes the record when no path is given: the job's temp folder, so later steps of the job find it. */
export function defaultBuildRecordPath(agentTempDir: string): string {
  return path.join(agentTempDir, 'outer-loop', 'build-record.json');
}

export function writeBuildRecord(file: string, record: BuildRecord): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
}

export function readBuildRecord(file: string): BuildRecord {
  if (!fs.existsSync(file)) {
    throw new FileError(`The build record '${file}' does not exist. Run BuildAndTag@1 earlier in the same job, or set the buildRecord input to the file it wrote.`);
  }
  let data: BuildRecord;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8')) as BuildRecord;
  } catch (err) {
    throw new FileError(`The build record '${file}' is not valid JSON (${(err as Error).message}).`);
  }
  const ok =
    data?.schemaVersion === 1 &&
    Array.isArray(data.images) &&
    data.images.every((i) => typeof i?.name === 'string' && /^sha256:[a-f0-9]{64}$/.test(i.imageId) && typeof i.repository === 'string' && Array.isArray(i.tags));
  if (!ok) throw new FileError(`The build record '${file}' is not one BuildAndTag@1 wrote (schemaVersion 1 with images of name, imageId, repository, tags).`);
  return data;
}

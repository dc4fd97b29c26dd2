// Which files on the agent the tasks may read when a compose file (or BuildAndTag's dockerfile
// input) names them: only those that resolve, symlinks followed, inside the project directory or a
// folder of the allowedPaths input. /proc, /sys and /dev never, whatever is allowed: /proc/self/environ
// holds the task's start-up environment, registry passwords and secret variables included, although
// task-lib removed them from process.env. Bind-mount sources are not read by the tasks (the engine
// mounts them), so they are not checked here (README, "Files the tasks read").
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileError } from './errors';

const NEVER_READ = ['/proc', '/sys', '/dev'];

export class ReadablePaths {
  private readonly roots: string[];
  private readonly projectName: string;

  /**
   * `projectDir`: the first compose file's folder (for BuildAndTag without a compose file, the build
   * context); `projectName` says what it is in messages. Relative allowed paths start at the working
   * directory.
   */
  constructor(projectDir: string, allowedPaths: string[], projectName?: string) {
    this.roots = [projectDir, ...allowedPaths].map((p) => realPath(path.resolve(p)) ?? path.resolve(p));
    this.projectName = projectName ?? `the project directory '${this.roots[0]}'`;
  }

  /**
   * The real path of `file` when the tasks may read it; else a FileError. A path that names nothing
   * (yet) reads nothing and passes: the caller says it is missing, or skips it when that is allowed.
   * `what` names where the path comes from: the compose file and the key (`Compose file 'x.yml':
   * service 'web' env_file`).
   */
  check(file: string, what: string): string {
    const given = path.resolve(file);
    const real = realPath(given);
    if (real === undefined) return given;
    const shown = `'${file}'${real !== given ? ` (a link to '${real}')` : ''}`;
    const system = NEVER_READ.find((d) => isInside(real, d));
    if (system) {
      throw new FileError(`${what} names ${shown}, which is under ${system}: the tasks never read /proc, /sys or /dev, even when allowedPaths lists them (they hold the agent's environment, secrets included). Name a file of the project instead.`);
    }
    if (!this.roots.some((root) => isInside(real, root))) {
      throw new FileError(
        `${what} names ${shown}, which is outside ${this.projectName}. The tasks read only files inside it or inside a folder of the allowedPaths input: move the file into the project, or add its folder to allowedPaths (one path per line).`,
      );
    }
    return real;
  }

  /** A folder the tasks walk (a build context): checked as a file is, and it may not hold /proc, /sys or /dev (a context of `/`). */
  checkFolder(folder: string, what: string): string {
    const real = this.check(folder, what);
    const held = NEVER_READ.filter((d) => isInside(d, real));
    if (held.length) {
      throw new FileError(`${what} names '${folder}', which holds ${held.join(', ')}: the tasks never read /proc, /sys or /dev. Use the folder of the application (the one with its Dockerfile) instead.`);
    }
    return real;
  }

  /** The text of a file the tasks may read (see check). */
  readText(file: string, what: string): string {
    return fs.readFileSync(this.check(file, what), 'utf8');
  }

  /** The bytes of a file the tasks may read (see check). */
  read(file: string, what: string): Buffer {
    return fs.readFileSync(this.check(file, what));
  }
}

/** `file` with every symlink followed; undefined when it does not exist or cannot be reached (then it cannot be read either). */
function realPath(file: string): string | undefined {
  try {
    return fs.realpathSync.native(file);
  } catch {
    return undefined;
  }
}

function isInside(file: string, folder: string): boolean {
  const rel = path.relative(folder, file);
  return rel === '' || (!rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel));
}
